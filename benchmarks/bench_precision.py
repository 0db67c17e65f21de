"""bf16 against fp32 pretraining on a demo store: the same steps, the losses, the step time.

Generates a demo store (the demo config's world and model, fewer tiles if asked), then runs
the same pretraining (seed, data order, masks) twice in one process, ``runtime.precision``
fp32 and bf16, and prints the loss of every epoch of both, the final losses' relative
difference, and the time per step of each. Exits 1 when the final bf16 loss is not within
``--tolerance`` (relative) of the fp32 one: bf16 training must end where fp32 training ends.

    python benchmarks/bench_precision.py                          # 200 steps, TreeSatAI-TS
    python benchmarks/bench_precision.py --steps 20 --tiles 16    # a smoke run
    python benchmarks/bench_precision.py --work /tmp/bp           # keep and reuse the store

Not a test: it prints figures (benchmarks/README.md records them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str) -> None:
    cmd = [sys.executable, "-m", "maestro.cli", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if res.returncode:
        raise SystemExit(f"{' '.join(cmd[2:4])} failed:\n{res.stderr[-3000:]}")


def make_store(config: dict, dataset: str, tiles: int | None, work: Path) -> tuple[Path, dict]:
    """Generate and convert the dataset's demo store under ``work``; return it and the
    pretraining job of the demo config."""
    from maestro.experiment import job_catalog
    from maestro.grid import step_job

    job = step_job(config, "pretrain", dataset=dataset)
    store = job_catalog(job).dataset(dataset).store.name
    zarr = work / f"{store}.zarr"
    if zarr.exists():
        return zarr, job
    gen = step_job(config, "generate-demo", store=store)
    if tiles:  # fewer tiles, in the demo's train / val / test proportions
        demo = gen["demo"]
        total = demo["n_train"] + demo["n_val"] + demo["n_test"]
        for k in ("n_train", "n_val", "n_test"):
            demo[k] = max(2, round(demo[k] * tiles / total))
    raw = work / f"{store}_raw"
    _cli("generate-demo", "--store", store, "--out", str(raw), "--job", json.dumps(gen))
    conv = step_job(config, "convert", store=store)
    _cli(
        "convert",
        "--store",
        store,
        "--raw",
        str(raw),
        "--out",
        str(zarr),
        "--job",
        json.dumps(conv),
    )
    return zarr, job


def pretrain(zarr: Path, dataset: str, job: dict, steps: int, precision: str, threads: int,
             out: Path, device: str = "cpu") -> dict:  # fmt: skip
    """``steps`` pretraining steps at ``precision``; the history rows and the step time."""
    from maestro.data.torch_dataset import MaestroDataset
    from maestro.experiment import job_catalog, job_phase, model_config
    from maestro.train.loop import steps_per_epoch
    from maestro.train.pretrain import run_pretrain
    from maestro.train.runtime import make_runtime

    ds = job_catalog(job).dataset(dataset)
    phase = job_phase("pretrain", job)
    n = len(MaestroDataset(zarr, ds, ds.pretrain_splits, train=True))
    per_epoch = steps_per_epoch(n, min(phase.batch_size, n), None)
    epochs = math.ceil(steps / per_epoch)
    phase = dataclasses.replace(phase, epochs=epochs, max_steps_per_epoch=math.ceil(steps / epochs))
    rt = make_runtime(device, threads=threads, precision=precision)
    metrics = run_pretrain(zarr, ds, model_config(job), phase, 0, out, rt)
    history = pd.read_csv(out / "history.csv").astype(float).to_dict("records")
    timed = history[1:] or history  # the first epoch includes allocations and warm-up
    step_s = sum(r["time_s"] for r in timed) / (len(timed) * phase.max_steps_per_epoch)
    return {"precision": rt.precision, "steps": metrics["steps"], "history": history,
            "final_loss": metrics["final_loss"], "step_s": step_s}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    p.add_argument("--dataset", default="treesatai_ts")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--tiles", type=int, default=None, help="demo tiles in all (default: config)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--device", default="cpu", help="cpu | cuda[:i]")
    p.add_argument("--tolerance", type=float, default=0.02, help="relative, final loss")
    p.add_argument("--work", default=None, help="folder of the store (default: a temp folder)")
    p.add_argument("--json", default=None, help="write the figures to this file")
    args = p.parse_args()

    from maestro.jobs import load_config
    from maestro.train.runtime import cpu_has_bf16

    config = load_config([args.config])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        zarr, job = make_store(config, args.dataset, args.tiles, work)
        runs = {
            prec: pretrain(
                zarr,
                args.dataset,
                job,
                args.steps,
                prec,
                args.threads,
                work / f"pretrain_{prec}",
                args.device,
            )
            for prec in ("fp32", "bf16")
        }
    fp, bf = runs["fp32"], runs["bf16"]
    if args.device == "cpu":
        hw = f"{args.threads} threads, CPU bf16 instructions: "
        hw += "yes" if cpu_has_bf16() else "no (emulated)"
    else:
        hw = torch.cuda.get_device_name(torch.device(args.device))
    print(f"{args.dataset} demo pretraining, {fp['steps']} steps, {hw}")
    print(f"{'epoch':>5} {'fp32 loss':>10} {'bf16 loss':>10}")
    for a, b in zip(fp["history"], bf["history"], strict=True):
        print(f"{int(a['epoch']):5d} {a['loss']:10.6f} {b['loss']:10.6f}")
    rel = abs(bf["final_loss"] - fp["final_loss"]) / fp["final_loss"]
    speed = fp["step_s"] / bf["step_s"]
    print(
        f"final loss: fp32 {fp['final_loss']:.6f}, bf16 {bf['final_loss']:.6f}, "
        f"relative difference {rel:.2e} (tolerance {args.tolerance})"
    )
    print(
        f"step: fp32 {fp['step_s'] * 1e3:.1f} ms, bf16 {bf['step_s'] * 1e3:.1f} ms, "
        f"bf16 speed-up x{speed:.2f}"
    )
    report = {"dataset": args.dataset, "threads": args.threads, "relative_difference": rel,
              "tolerance": args.tolerance, "speedup": speed, "runs": runs}  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if rel > args.tolerance:
        print(f"FAIL: bf16 ends {rel:.4f} away from fp32 (> {args.tolerance})")
        raise SystemExit(1)


if __name__ == "__main__":
    main()

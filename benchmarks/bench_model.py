"""Model throughput benchmark: pretraining steps on the datasets' real input shapes.

Prints, per (model size, dataset): pretraining samples/s and tokens/s, peak memory, and the
achieved FLOP/s (counted by torch's FlopCounterMode) divided by the machine's matmul peak
measured in the same run; then our attention block against a plain softmax attention.
Each configuration runs in its own process so that its peak memory is its own.

    python benchmarks/bench_model.py                      # tiny and base, all datasets
    python benchmarks/bench_model.py --sizes base --datasets treesatai_ts --steps 5
    python benchmarks/bench_model.py --json out.json      # also write the figures
    python benchmarks/bench_model.py --baseline benchmarks/baseline_cpu.json  # compare

Not a test: numbers depend on the machine. Recorded figures: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

DATASETS = ("treesatai_ts", "pastis_hd", "flair_hub")
CELL = {
    "fusion": "group",
    "inter": "3",
    "spectral": "joint",
    "norm": "patchgroup",
    "groups": "spec",
}


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 2048, reps: int = 10) -> float:
    """FLOP/s of a large square GEMM: the practical peak of this machine."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    _sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def synthetic_batch(dataset, batch: int, device: torch.device) -> dict:
    """Random inputs with the dataset's model shapes (paper geometry)."""
    inputs, dates = {}, {}
    for m in dataset.modalities:
        px = m.pixels(dataset.store.crop_m)
        inputs[m.name] = torch.randn(batch, m.num_dates, m.channels, px, px, device=device)
        days = torch.linspace(10, 350, m.num_dates, device=device).round().long()
        d = torch.stack([torch.full_like(days, 2021), days, torch.zeros_like(days)], -1)
        dates[m.name] = d.expand(batch, -1, -1).clone()
    ref = torch.tensor([[2021, 182, 0]] * batch, device=device)
    return {"inputs": inputs, "dates": dates, "ref_date": ref}


def bench_one(size: str, dataset_name: str, batch: int, steps: int, device: str) -> dict:
    """Time pretraining steps (forward, backward, AdamW) of one configuration."""
    from maestro.experiment import job_catalog, model_config
    from maestro.train.build import build_mae
    from maestro.train.optim import build_optimizer
    from maestro.train.runtime import make_runtime

    rt = make_runtime(device)
    job = {"model": {"size": size}, "cell": {**CELL, "size": size, "length": "1"}}
    ds = job_catalog(job).dataset(dataset_name)
    torch.manual_seed(0)
    model = build_mae(model_config(job), ds).to(rt.device)
    opt = build_optimizer(model, 1e-4, (0.9, 0.99), 0.01)
    data = synthetic_batch(ds, batch, rt.device)

    def step() -> None:
        with rt.autocast():
            out = model(data)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()

    step()  # warm-up (allocations, kernels)
    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    _sync(rt.device)
    if rt.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(rt.device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(rt.device)
    dt = (time.perf_counter() - t) / steps
    tokens = sum(p.tokens for p in model.plans.values())
    if rt.device.type == "cuda":
        peak_mem = torch.cuda.max_memory_allocated(rt.device) / 2**20
    else:
        peak_mem = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    return {
        "size": size,
        "dataset": dataset_name,
        "batch": batch,
        "step_s": dt,
        "samples_per_s": batch / dt,
        "tokens_per_s": batch * tokens / dt,
        "tokens_per_sample": tokens,
        "flops_per_step": flops,
        "achieved_flops": flops / dt,
        "peak_mem_mib": peak_mem,
        "params_m": model.num_params()["total"] / 1e6,
    }


def plain_attention(x: torch.Tensor, attn: torch.nn.Module) -> torch.Tensor:
    """Reference: softmax(q k^T / sqrt(d)) v with explicit matrices, same weights."""
    from einops import rearrange

    qkv = attn.to_qkv(attn.norm(x))
    q, k, v = rearrange(qkv, "b n (three h d) -> three b h n d", three=3, h=attn.heads)
    w = torch.softmax(q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5, dim=-1)
    return attn.to_out(rearrange(w @ v, "b h n d -> b n (h d)"))


def bench_attention(device: str, tokens: int, reps: int) -> dict:
    """Forward + backward time of our SDPA attention block vs the plain implementation."""
    from maestro.model.layers import Attention

    dev = torch.device(device)
    attn = Attention(768, 12, 64).to(dev)
    x = torch.randn(4, tokens, 768, device=dev, requires_grad=True)
    out = {}
    for name, fn in (("sdpa", attn), ("plain", lambda t: plain_attention(t, attn))):
        torch.testing.assert_close(fn(x), attn(x), rtol=1e-4, atol=1e-4)
        for _ in range(2):
            fn(x).sum().backward()
        _sync(dev)
        t = time.perf_counter()
        for _ in range(reps):
            fn(x).sum().backward()
        _sync(dev)
        out[name] = (time.perf_counter() - t) / reps
    return {
        "tokens": tokens,
        "sdpa_s": out["sdpa"],
        "plain_s": out["plain"],
        "speedup": out["plain"] / out["sdpa"],
    }


def _child(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    size, ds = args.one
    print(json.dumps(bench_one(size, ds, args.batch[size], args.steps, args.device)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", default=["tiny", "base"])
    p.add_argument("--datasets", nargs="+", default=list(DATASETS))
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None, help="write the figures to this file")
    p.add_argument("--baseline", default=None, help="earlier --json output to compare with")
    p.add_argument("--attention-tokens", nargs="+", type=int, default=[256, 1024])
    p.add_argument("--one", nargs=2, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    args.batch = {"tiny": 8, "small": 4, "base": 2, "large": 1}
    if args.one:
        return _child(args)

    dev = torch.device(args.device)
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    peak = matmul_peak(dev, dtype)
    print(
        f"machine: {platform.node()} {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {dev}"
    )
    print(f"matmul peak ({dtype}): {peak / 1e9:.1f} GFLOP/s\n")
    rows = []
    cols = ("batch", "samples/s", "tokens/s", "peak MiB", "GFLOP/s", "/peak")
    print(f"{'size':6} {'dataset':13} " + " ".join(f"{c:>10}" for c in cols))
    for size in args.sizes:
        for ds in args.datasets:
            cmd = [
                sys.executable,
                __file__,
                "--one",
                size,
                ds,
                "--steps",
                str(args.steps),
                "--device",
                args.device,
            ]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            r = json.loads(res.stdout.strip().splitlines()[-1])
            r["ratio_to_peak"] = r["achieved_flops"] / peak
            rows.append(r)
            vals = (
                f"{r['batch']}", f"{r['samples_per_s']:.2f}", f"{r['tokens_per_s']:.0f}",
                f"{r['peak_mem_mib']:.0f}", f"{r['achieved_flops'] / 1e9:.1f}",
                f"{r['ratio_to_peak']:.2f}",
            )  # fmt: skip
            print(f"{size:6} {ds:13} " + " ".join(f"{v:>10}" for v in vals))
    attention = [bench_attention(args.device, n, 3) for n in args.attention_tokens]
    print("\nattention block (base: 12 heads x 64, batch 4), forward + backward:")
    for a in attention:
        print(
            f"  {a['tokens']:5d} tokens: SDPA {a['sdpa_s'] * 1e3:7.1f} ms, plain softmax "
            f"{a['plain_s'] * 1e3:7.1f} ms, speedup x{a['speedup']:.2f}"
        )
    report = {"matmul_peak_flops": peak, "device": str(dev), "rows": rows, "attention": attention}
    if args.baseline:
        base = {
            (r["size"], r["dataset"]): r
            for r in json.loads(Path(args.baseline).read_text())["rows"]
        }
        print("\nagainst the baseline (samples/s ratio, FLOP/s-to-peak ratio):")
        for r in rows:
            b = base.get((r["size"], r["dataset"]))
            if b:
                speed = r["samples_per_s"] / b["samples_per_s"]
                print(
                    f"  {r['size']:6} {r['dataset']:13} x{speed:.2f}  "
                    f"{r['ratio_to_peak']:.2f} vs {b['ratio_to_peak']:.2f}"
                )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()

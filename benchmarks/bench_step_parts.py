"""Where one CPU pretraining step spends its time, op by op, and how fast its matmuls run.

Times every aten op of a pretraining step (forward with 75 % masking, backward, AdamW) at
the dispatch level (a ``TorchDispatchMode`` around each kernel call, wall clock), groups the
ops into the parts of a step and lists the matmul shapes with their GFLOP/s divided by the
machine's matmul peak of the precision in use, measured in the same run. The sum of the
matmul part over its FLOPs is the matmul efficiency: an upper bound on the achieved /
peak ratio of a whole step (``bench_model.py``), reached only if nothing else took time.

Why not ``torch.profiler``: on the Base bf16 step it adds ~25 % to the step and attributes
it unevenly (the bf16 -> fp32 casts of the MLP weight gradients read 5 ms each there and
0.7 ms here, with the step itself as fast as without instrumentation).

    python benchmarks/bench_step_parts.py                      # Base, TreeSatAI-TS, batch 8, bf16
    python benchmarks/bench_step_parts.py --batch 32 --precision fp32
    python benchmarks/bench_step_parts.py --json parts.json

CPU only (CUDA kernels run asynchronously: time them with CUDA events, ``gpu_check.sh``).
Not a test: numbers depend on the machine. Recorded figures: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).parent))
from bench_model import CELL, DATASETS, peak_spread, synthetic_batch

#: aten op names grouped into the parts of a step (first match wins; the rest is "other"),
#: compared without leading/trailing underscores and a ``_backward`` suffix; keys longer than
#: four letters also match inside a name (``_scaled_dot_product_flash_attention_for_cpu``).
PARTS = (
    ("matmul", ("mm", "addmm", "bmm")),
    ("attention", ("scaled_dot_product", "flash_attention")),
    ("optimizer", ("fused_adamw", "foreach")),
    ("layer norm", ("native_layer_norm",)),
    ("other casts and copies", ("to_copy", "copy", "clone", "contiguous")),
    ("gather / scatter / cat", ("gather", "scatter", "cat", "stack", "index")),
    ("elementwise", ("gelu", "add", "mul", "sub", "abs", "div", "sum", "mean", "var", "where")),
)
MATMULS = {"mm", "addmm", "bmm"}


def matmul_flops(name: str, args: tuple) -> tuple[int, str]:
    """FLOPs and a shape label of one ``mm`` / ``addmm`` / ``bmm`` call."""
    if name == "addmm":
        args = args[1:]  # (bias, a, b)
    a, b = args[0], args[1]
    if name == "bmm":
        (n, m, k), out = a.shape, b.shape[-1]
        return 2 * n * m * k * out, f"{n}x({m}x{k} @ {k}x{out})"
    (m, k), out = a.shape, b.shape[-1]
    return 2 * m * k * out, f"{m}x{k} @ {k}x{out}"


class OpTimer(TorchDispatchMode):
    """Wall-clock time of every aten call, by part; matmul time and FLOPs by shape.

    Casts of a tensor shaped like a weight matrix are split out as weight casts (forward
    fp32 -> bf16 under autocast; backward bf16 -> fp32 of the weight gradient).
    """

    def __init__(self, weight_shapes: set[tuple[int, ...]]) -> None:
        super().__init__()
        self.weight_shapes = weight_shapes
        self.parts: dict[str, float] = defaultdict(float)
        self.shapes: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])  # s, flops, n
        self.ops: dict[tuple[str, str], float] = defaultdict(float)  # by (part, op name)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        t = time.perf_counter()
        out = func(*args, **(kwargs or {}))
        dt = time.perf_counter() - t
        name = func.overloadpacket.__name__
        part = self._part(name, args)
        self.parts[part] += dt
        self.ops[(part, name)] += dt
        if name in MATMULS:
            flops, label = matmul_flops(name, args)
            rec = self.shapes[f"{name} {label}"]
            rec[0] += dt
            rec[1] += flops
            rec[2] += 1
        return out

    def _part(self, name: str, args: tuple) -> str:
        if name == "_to_copy" and tuple(args[0].shape) in self.weight_shapes:
            grad = args[0].dtype != torch.float32
            return "weight casts (gradients)" if grad else "weight casts (forward)"
        name = name.removesuffix("_backward").strip("_")
        for part, keys in PARTS:
            if name in keys or any(len(k) > 4 and k in name for k in keys):
                return part
        return "other"


def run(size: str, dataset: str, batch: int, precision: str, steps: int, top: int) -> dict:
    """Time ``steps`` instrumented steps (after two warm-up steps) of one configuration."""
    from maestro.experiment import job_catalog, model_config
    from maestro.train.build import build_mae
    from maestro.train.optim import build_optimizer
    from maestro.train.runtime import make_runtime

    rt = make_runtime("cpu", precision=precision)
    job = {"model": {"size": size}, "cell": {**CELL, "size": size, "length": "1"}}
    ds = job_catalog(job).dataset(dataset)
    torch.manual_seed(0)
    model = build_mae(model_config(job), ds)
    data = synthetic_batch(ds, batch, rt.device)
    opt = build_optimizer(model, 1e-4, (0.9, 0.99), 0.01)

    def step() -> None:
        with rt.autocast():
            out = model(data)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()

    for _ in range(2):
        step()
    plain = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        plain.append(time.perf_counter() - t)
    weight_shapes = {tuple(p.shape) for p in model.parameters() if p.dim() == 2}
    timer = OpTimer(weight_shapes)
    t = time.perf_counter()
    with timer:
        for _ in range(steps):
            step()
    timed = (time.perf_counter() - t) / steps
    dtype = torch.bfloat16 if rt.amp else torch.float32
    peaks = peak_spread(torch.device("cpu"), dtype, repeats=3)
    peak = statistics.median(peaks)
    parts = {k: v / steps for k, v in timer.parts.items()}
    parts["untracked (Python, autograd engine)"] = max(timed - sum(parts.values()), 0.0)
    mm_s = sum(r[0] for r in timer.shapes.values()) / steps
    mm_flops = sum(r[1] for r in timer.shapes.values()) / steps
    shapes = [
        {"op": k, "ms_per_step": 1e3 * s / steps, "calls_per_step": n / steps,
         "gflops": f / s / 1e9, "ratio_to_peak": f / s / peak}
        for k, (s, f, n) in sorted(timer.shapes.items(), key=lambda kv: -kv[1][0])[:top]
    ]  # fmt: skip
    top_ops = sorted(timer.ops.items(), key=lambda kv: -kv[1])[:top]
    return {
        "size": size, "dataset": dataset, "batch": batch, "precision": precision,
        "threads": torch.get_num_threads(), "step_s": statistics.median(plain),
        "instrumented_step_s": timed, "matmul_peak_flops": peaks,
        "parts_s": dict(sorted(parts.items(), key=lambda kv: -kv[1])),
        "matmul_flops_per_step": mm_flops, "matmul_efficiency": mm_flops / mm_s / peak,
        "shapes": shapes,
        "ops": [{"part": p, "op": o, "ms_per_step": 1e3 * s / steps} for (p, o), s in top_ops],
    }  # fmt: skip


def report(r: dict) -> None:
    """Print the parts of the step and the slowest matmul shapes."""
    peak = statistics.median(r["matmul_peak_flops"])
    print(
        f"{r['size']} {r['dataset']} batch {r['batch']} {r['precision']}, {r['threads']} "
        f"threads: step {r['step_s']:.3f} s ({r['instrumented_step_s']:.3f} s instrumented); "
        f"matmul peak median {peak / 1e9:.1f} GFLOP/s "
        f"({min(r['matmul_peak_flops']) / 1e9:.1f}-{max(r['matmul_peak_flops']) / 1e9:.1f})"
    )
    total = r["instrumented_step_s"]
    print("\n| part | ms per step | share |\n|---|---|---|")
    for part, s in r["parts_s"].items():
        print(f"| {part} | {1e3 * s:.1f} | {100 * s / total:.1f} % |")
    print("\n| largest ops | part | ms per step |\n|---|---|---|")
    for op in r["ops"]:
        print(f"| {op['op']} | {op['part']} | {op['ms_per_step']:.1f} |")
    print(
        f"\nmatmuls: {r['matmul_flops_per_step'] / 1e9:.1f} GFLOP per step at "
        f"{r['matmul_efficiency']:.2f} of the peak (the bound on a whole step's ratio)\n"
    )
    print("| op and shape | calls | ms per step | GFLOP/s | / peak |\n|---|---|---|---|---|")
    for s in r["shapes"]:
        print(
            f"| {s['op']} | {s['calls_per_step']:.0f} | {s['ms_per_step']:.1f} | "
            f"{s['gflops']:.0f} | {s['ratio_to_peak']:.2f} |"
        )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="base", choices=("tiny", "base"))
    p.add_argument("--dataset", default="treesatai_ts", choices=DATASETS)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    p.add_argument("--steps", type=int, default=2, help="instrumented steps (and plain ones)")
    p.add_argument("--top", type=int, default=15, help="matmul shapes to list")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's choice)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    r = run(args.size, args.dataset, args.batch, args.precision, args.steps, args.top)
    report(r)
    if args.json:
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps(r, indent=1))
        tmp.replace(args.json)


if __name__ == "__main__":
    main()

"""Model throughput benchmark: pretraining steps on the datasets' real input shapes.

Prints, per (model size, dataset, batch, precision): pretraining samples/s and tokens/s,
peak memory, and the achieved FLOP/s divided by the matmul peak of that precision measured
in the same run (several times: the spread is printed); the bf16 / fp32 step ratio; with
``--profile``, where a step's time goes; then our attention block against a plain softmax
attention. FLOPs are torch's FlopCounterMode count plus the fused attention's, counted
analytically (the counter does not see the CPU fused kernel): 4 B H N^2 d forward, twice
that backward. Each configuration runs in its own process so that its peak memory is its own.

    python benchmarks/bench_model.py                      # tiny and base, all datasets, fp32
    python benchmarks/bench_model.py --sizes base --datasets treesatai_ts --steps 5
    python benchmarks/bench_model.py --sizes base --datasets treesatai_ts --batch 8 32 \
        --precision fp32 bf16 --profile                   # bf16 speed-up and breakdown
    python benchmarks/bench_model.py --json out.json      # also write the figures
    python benchmarks/bench_model.py --baseline benchmarks/baseline_cpu.json  # compare

Not a test: numbers depend on the machine. Recorded figures: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
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


def peak_spread(device: torch.device, dtype: torch.dtype, repeats: int = 3) -> list[float]:
    """The matmul peak measured ``repeats`` times (it swings on shared machines)."""
    return [matmul_peak(device, dtype) for _ in range(repeats)]


class AttentionFlops:
    """Analytic FLOPs of every :class:`maestro.model.layers.Attention` call of a model.

    Forward 4 B H N^2 d (q k^T and the weighted sum of v), backward twice the forward
    (torch's own convention for the fused kernels on CUDA); the rest of each block (qkv and
    output projections) is a plain matmul that FlopCounterMode counts.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        from maestro.model.layers import Attention

        self.flops = 0
        self.counting = False
        for mod in model.modules():
            if isinstance(mod, Attention):
                mod.register_forward_hook(self._hook)

    def _hook(self, mod: torch.nn.Module, args: tuple, out: torch.Tensor) -> None:
        if self.counting:
            b, n, _ = args[0].shape
            d = mod.to_qkv.out_features // (3 * mod.heads)
            self.flops += 3 * 4 * b * mod.heads * n * n * d  # forward + backward


#: Profiler op names grouped into the parts of a step (first match wins; the rest is "other").
PROFILE_PARTS = (
    ("matmul", ("aten::mm", "aten::addmm", "aten::bmm", "aten::linear", "aten::matmul")),
    ("attention", ("scaled_dot_product", "flash_attention", "efficient_attention")),
    ("optimizer", ("adam", "Optimizer.step")),
    ("casts and copies", ("aten::copy_", "aten::to", "aten::_to_copy", "aten::clone")),
    ("layer norm", ("layer_norm",)),
    ("gather / scatter / cat", ("gather", "scatter", "aten::cat", "index")),
    ("elementwise", ("gelu", "aten::add", "aten::mul", "aten::sub", "aten::abs", "aten::div")),
)


def profile_breakdown(step) -> dict[str, float]:
    """Share of one step's self CPU time per part of :data:`PROFILE_PARTS`."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    parts: dict[str, float] = {}
    for ev in prof.key_averages():
        name = ev.key
        part = next(
            (p for p, keys in PROFILE_PARTS if any(k.lower() in name.lower() for k in keys)),
            "other",
        )
        parts[part] = parts.get(part, 0.0) + ev.self_cpu_time_total
    total = sum(parts.values()) or 1.0
    return {k: v / total for k, v in sorted(parts.items(), key=lambda kv: -kv[1])}


def bench_one(
    size: str,
    dataset_name: str,
    batch: int,
    steps: int,
    device: str,
    precision: str = "fp32",
    profile: bool = False,
    compile: bool = False,
) -> dict:
    """Time pretraining steps (forward, backward, AdamW) of one configuration.

    ``precision`` ``ref``: the reference built like the official model (explicit softmax
    attention, per-tensor AdamW; fp16 autocast with a gradient scaler on CUDA, as its
    Lightning ``16-mixed``; fp32 on CPU), with our weights, inputs and masks.
    """
    from maestro.experiment import job_catalog, model_config
    from maestro.model import layers
    from maestro.train.build import build_mae
    from maestro.train.optim import build_optimizer, param_groups
    from maestro.train.runtime import make_runtime

    reference = precision == "ref"
    rt = make_runtime(device, precision="fp32" if reference else precision)
    job = {"model": {"size": size}, "cell": {**CELL, "size": size, "length": "1"}}
    ds = job_catalog(job).dataset(dataset_name)
    torch.manual_seed(0)
    model = build_mae(model_config(job), ds).to(rt.device)
    data = synthetic_batch(ds, batch, rt.device)
    attention = AttentionFlops(model)
    if compile:  # as runtime.compile: every Transformer, dynamic shapes
        model.compile_blocks()
    autocast, scaler = rt.autocast, None
    if reference:
        layers.attention = explicit_attention  # what Attention.forward calls
        groups = param_groups(model.named_parameters(), 0.01)
        opt = torch.optim.AdamW(groups, lr=1e-4, betas=(0.9, 0.99), foreach=False, fused=False)
        if rt.device.type == "cuda":
            scaler = torch.amp.GradScaler("cuda")
            autocast = lambda: torch.autocast("cuda", dtype=torch.float16)  # noqa: E731
    else:
        opt = build_optimizer(model, 1e-4, (0.9, 0.99), 0.01)

    def step() -> None:
        with autocast():
            out = model(data)
        opt.zero_grad(set_to_none=True)
        if scaler is None:
            out.loss.backward()
            opt.step()
        else:
            scaler.scale(out.loss).backward()
            scaler.step(opt)
            scaler.update()

    t0 = time.perf_counter()
    step()  # warm-up (allocations, kernels; compilation with --compile)
    first_step_s = time.perf_counter() - t0
    attention.counting = not reference  # explicit attention: its bmm are counted by torch
    with FlopCounterMode(display=False) as counter:
        step()
    attention.counting = False
    flops = counter.get_total_flops() + attention.flops
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
        "precision": "ref" if reference else rt.precision,
        "step_s": dt,
        "first_step_s": first_step_s,
        "compiled": compile,
        "samples_per_s": batch / dt,
        "tokens_per_s": batch * tokens / dt,
        "tokens_per_sample": tokens,
        "flops_per_step": flops,
        "achieved_flops": flops / dt,
        "peak_mem_mib": peak_mem,
        "attention_flops_per_step": attention.flops,
        "params_m": model.num_params()["total"] / 1e6,
    } | ({"breakdown": profile_breakdown(step)} if profile else {})


def explicit_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``softmax(q k^T / sqrt(d)) v`` with the score matrix materialised (the official's)."""
    w = torch.softmax(q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5, dim=-1)
    return w @ v


def plain_attention(x: torch.Tensor, attn: torch.nn.Module) -> torch.Tensor:
    """Reference: softmax(q k^T / sqrt(d)) v with explicit matrices, same weights."""
    from einops import rearrange

    qkv = attn.to_qkv(attn.norm(x))
    q, k, v = rearrange(qkv, "b n (three h d) -> three b h n d", three=3, h=attn.heads)
    return attn.to_out(rearrange(explicit_attention(q, k, v), "b h n d -> b n (h d)"))


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
    size, ds, batch, precision = args.one
    row = bench_one(
        size, ds, int(batch), args.steps, args.device, precision, args.profile, args.compile
    )
    print(json.dumps(row))


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
#: Matmul peak that a reference row is measured against (its compute precision).
REF_DTYPE = {"cpu": "fp32", "cuda": "bf16"}  # fp16 and bf16 tensor-core peaks are equal


def _peaks(dev: torch.device, precisions: list[str]) -> dict[str, list[float]]:
    return {p: peak_spread(dev, DTYPES[p]) for p in precisions}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", default=["tiny", "base"])
    p.add_argument("--datasets", nargs="+", default=list(DATASETS))
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--batch", nargs="+", type=int, default=None,
                   help="batch sizes (default: 8 tiny, 4 small, 2 base, 1 large)")  # fmt: skip
    p.add_argument("--precision", nargs="+", choices=sorted(DTYPES), default=None,
                   help="default: fp32 on CPU, bf16 on CUDA")  # fmt: skip
    p.add_argument("--profile", action="store_true", help="also profile one step of each")
    p.add_argument("--compile", action="store_true", help="torch.compile the blocks (ours)")
    p.add_argument(
        "--reference",
        action="store_true",
        help="also time a reference built like the official model (explicit attention, "
        "per-tensor AdamW, fp16 on CUDA) and print our speed-up over it",
    )
    p.add_argument("--json", default=None, help="write the figures to this file")
    p.add_argument("--baseline", default=None, help="earlier --json output to compare with")
    p.add_argument("--attention-tokens", nargs="+", type=int, default=[256, 1024])
    p.add_argument("--one", nargs=4, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        return _child(args)
    default_batch = {"tiny": 8, "small": 4, "base": 2, "large": 1}

    dev = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    precisions = args.precision or (["bf16"] if dev.type == "cuda" else ["fp32"])
    peak_of = {p: p for p in precisions} | {"ref": REF_DTYPE[dev.type]}
    peaks = _peaks(dev, sorted({peak_of[p] for p in precisions + ["ref"] * args.reference}))
    runs = precisions + (["ref"] if args.reference else [])
    print(
        f"machine: {platform.node()} {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {dev}"
    )
    rows = []
    cols = ("batch", "prec", "samples/s", "tokens/s", "peak MiB", "GFLOP/s", "/peak")
    print(f"{'size':6} {'dataset':13} " + " ".join(f"{c:>10}" for c in cols))
    for size in args.sizes:
        for ds in args.datasets:
            for batch in args.batch or [default_batch[size]]:
                for prec in runs:
                    cmd = [sys.executable, __file__, "--one", size, ds, str(batch), prec,
                           "--steps", str(args.steps), "--device", args.device]  # fmt: skip
                    cmd += ["--threads", str(args.threads)] if args.threads else []
                    cmd += ["--profile"] if args.profile else []
                    cmd += ["--compile"] if args.compile and prec != "ref" else []
                    res = subprocess.run(cmd, capture_output=True, text=True)
                    if res.returncode:
                        raise SystemExit(f"{' '.join(cmd[2:])} failed:\n{res.stderr[-3000:]}")
                    r = json.loads(res.stdout.strip().splitlines()[-1])
                    r["ratio_to_peak"] = r["achieved_flops"] / statistics.median(
                        peaks[peak_of[prec]]
                    )
                    rows.append(r)
                    vals = (
                        f"{r['batch']}", prec, f"{r['samples_per_s']:.2f}",
                        f"{r['tokens_per_s']:.0f}", f"{r['peak_mem_mib']:.0f}",
                        f"{r['achieved_flops'] / 1e9:.1f}", f"{r['ratio_to_peak']:.2f}",
                    )  # fmt: skip
                    print(f"{size:6} {ds:13} " + " ".join(f"{v:>10}" for v in vals), flush=True)
    # the peak again after the runs: how much it moved while they ran
    for prec, later in _peaks(dev, list(peaks)).items():
        peaks[prec] += later
    for prec, vals in peaks.items():
        print(
            f"matmul peak ({prec}, {len(vals)} runs): median {statistics.median(vals) / 1e9:.1f}, "
            f"min {min(vals) / 1e9:.1f}, max {max(vals) / 1e9:.1f} GFLOP/s"
        )
    _print_ratios(rows)
    _print_breakdowns(rows)
    attention = [bench_attention(args.device, n, 3) for n in args.attention_tokens]
    print("\nattention block (base: 12 heads x 64, batch 4), forward + backward:")
    for a in attention:
        print(
            f"  {a['tokens']:5d} tokens: SDPA {a['sdpa_s'] * 1e3:7.1f} ms, plain softmax "
            f"{a['plain_s'] * 1e3:7.1f} ms, speedup x{a['speedup']:.2f}"
        )
    peak = statistics.median(peaks[peak_of[precisions[0]]])
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor()
    report = {"matmul_peak_flops": peak, "matmul_peaks": peaks, "device": str(dev),
              "device_name": name,
              "rows": rows, "attention": attention}  # fmt: skip
    if args.baseline:
        base = {
            (r["size"], r["dataset"], r["batch"], r.get("precision", "fp32")): r
            for r in json.loads(Path(args.baseline).read_text())["rows"]
        }
        print("\nagainst the baseline (samples/s ratio, FLOP/s-to-peak ratio):")
        for r in rows:
            b = base.get((r["size"], r["dataset"], r["batch"], r["precision"]))
            if b:
                speed = r["samples_per_s"] / b["samples_per_s"]
                print(
                    f"  {r['size']:6} {r['dataset']:13} x{speed:.2f}  "
                    f"{r['ratio_to_peak']:.2f} vs {b['ratio_to_peak']:.2f}"
                )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


def _print_ratios(rows: list[dict]) -> None:
    """bf16 over fp32, and each of ours over the official-like reference (samples/s)."""
    by = {(r["size"], r["dataset"], r["batch"], r["precision"]): r for r in rows}
    for num, den, title in (
        ("bf16", "fp32", "bf16 step speed-up over fp32"),
        ("fp32", "ref", "our fp32 step over the official-like reference"),
        ("bf16", "ref", "our bf16 step over the official-like reference"),
    ):
        pairs = [(k, by[(*k[:3], den)]) for k in by if k[3] == num and (*k[:3], den) in by]
        if pairs:
            print(f"\n{title}:")
        for k, d in pairs:
            speed = by[k]["samples_per_s"] / d["samples_per_s"]
            print(f"  {k[0]:6} {k[1]:13} batch {k[2]:3d}: x{speed:.2f}")


def _print_breakdowns(rows: list[dict]) -> None:
    for r in rows:
        if r.get("compiled"):
            print(f"  compiled {r['size']} {r['dataset']} batch {r['batch']} {r['precision']}: "
                  f"first step {r['first_step_s']:.1f} s (compilation)")  # fmt: skip
        if "breakdown" in r:
            parts = ", ".join(f"{k} {v:.0%}" for k, v in r["breakdown"].items())
            print(
                f"  profile {r['size']} {r['dataset']} batch {r['batch']} {r['precision']}: {parts}"
            )


if __name__ == "__main__":
    main()

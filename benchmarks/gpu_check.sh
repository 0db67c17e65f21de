#!/usr/bin/env bash
# The GPU check of issue 13, as one short script (benchmarks/README.md records its figures):
#   1. pretraining step throughput at Base size, bf16 and fp32 (fused SDPA) and a reference
#      built like the official model (explicit attention, per-tensor AdamW, fp16), achieved FLOP/s
#      against the bf16 matmul peak measured in the same run and the device's nominal peak;
#   2. bf16 against fp32 pretraining losses over the same steps on a demo store;
#   3. a 2-process data-parallel smoke test: NCCL on 2 GPUs, else gloo on the CPU (one GPU
#      cannot hold two NCCL ranks).
# Without CUDA it runs the same three steps on the CPU at a tiny size (the test suite does,
# so that it cannot rot).
#
#   benchmarks/gpu_check.sh [OUT_DIR]          # figures and logs in OUT_DIR (default: a temp dir)
#   PYTHON=/path/to/python benchmarks/gpu_check.sh
set -euo pipefail

cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-$(mktemp -d)}
mkdir -p "$OUT"

GPUS=$("$PY" -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)')
if [ "$GPUS" -gt 0 ]; then
    DEVICE=cuda SIZE=base BATCH="8 32" STEPS=10 PREC_STEPS=200 TILES=""
    "$PY" -c 'import torch; p = torch.cuda.get_device_properties(0); print(f"device: {p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda}")'
else
    DEVICE=cpu SIZE=tiny BATCH="2" STEPS=1 PREC_STEPS=4 TILES="--tiles 12"
    echo "no CUDA device: the CPU variant at a tiny size"
fi

echo "== 1. step throughput ($SIZE, batch $BATCH, bf16 and fp32)"
# shellcheck disable=SC2086
"$PY" benchmarks/bench_model.py --device "$DEVICE" --sizes "$SIZE" \
    --datasets treesatai_ts pastis_hd --batch $BATCH --precision bf16 fp32 --reference --steps "$STEPS" \
    --attention-tokens 1024 --json "$OUT/bench_model.json" | tee "$OUT/bench_model.txt"
"$PY" - "$OUT/bench_model.json" <<'EOF'
import json, sys
# Nominal dense bf16 tensor-core peaks (vendor data sheets, without sparsity), FLOP/s.
NOMINAL = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}
report = json.load(open(sys.argv[1]))
name = report.get("device_name", "")
nominal = next((v for k, v in NOMINAL.items() if k in name), None)
for r in report["rows"]:
    if r["precision"] != "bf16":
        continue
    line = f"  MFU {r['size']} {r['dataset']} batch {r['batch']}: {r['ratio_to_peak']:.2f} of the measured peak"
    if nominal:
        line += f", {r['achieved_flops'] / nominal:.2f} of the nominal {nominal / 1e12:.0f} TFLOP/s"
    print(line)
EOF

echo "== 2. bf16 against fp32 losses ($PREC_STEPS steps, demo TreeSatAI-TS)"
# shellcheck disable=SC2086
"$PY" benchmarks/bench_precision.py --device "$DEVICE" --steps "$PREC_STEPS" $TILES \
    --work "$OUT/precision" --json "$OUT/precision.json" | tee "$OUT/precision.txt"

echo "== 3. two-process data parallel"
if [ "$GPUS" -ge 2 ]; then DDP_DEVICE=cuda; else DDP_DEVICE=cpu; fi
JOB=$("$PY" -m maestro.cli job --config config/config.yaml --step pretrain --dataset treesatai_ts \
    | "$PY" -c 'import json, sys; j = json.load(sys.stdin); j["phase"] |= {"epochs": 1, "batch_size": 2, "max_steps_per_epoch": 3}; print(json.dumps(j))')
"$PY" -m torch.distributed.run --standalone --nproc_per_node=2 -m maestro.cli pretrain \
    --dataset treesatai_ts --store-path "$OUT/precision/treesatai_ts.zarr" \
    --out-dir "$OUT/ddp" --device "$DDP_DEVICE" --threads 1 --job "$JOB" \
    > "$OUT/ddp.log" 2>&1 || { tail -n 40 "$OUT/ddp.log"; exit 1; }
"$PY" - "$OUT/ddp/provenance.json" "$DDP_DEVICE" <<'EOF'
import json, sys
prov = json.load(open(sys.argv[1]))
world = prov["device"]["world_size"]
backend = "NCCL" if sys.argv[2] == "cuda" else "gloo"
assert world == 2, f"expected 2 ranks, found {world}"
print(f"  DDP: 2 ranks ({backend}, {prov['device']['device']}), loss {prov['metrics']['final_loss']:.4f}")
EOF
echo "gpu_check: done, figures in $OUT"

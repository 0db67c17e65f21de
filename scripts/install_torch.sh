#!/bin/sh
# Install the pinned torch into the given interpreter's environment.
#
# `pip install torch==2.13.0` resolves to the CPU wheel on machines that ship it
# (PIP_FIND_LINKS) and to the default CUDA build from PyPI elsewhere. On a machine with
# no NVIDIA driver and no local CPU wheel we ask the PyTorch CPU index instead, so that
# a laptop never downloads several GB of CUDA libraries it cannot use.
set -eu
PY="$1"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
if "$PY" -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$TORCH_VERSION' else 1)" 2>/dev/null; then
    exit 0
fi
if command -v nvidia-smi >/dev/null 2>&1; then
    exec "$PY" -m pip install --quiet "torch==$TORCH_VERSION"
fi
for d in $(echo "${PIP_FIND_LINKS:-}" | tr ' ' '\n'); do
    if ls "$d"/torch-"$TORCH_VERSION"+cpu-*.whl >/dev/null 2>&1; then
        exec "$PY" -m pip install --quiet "torch==$TORCH_VERSION"
    fi
done
exec "$PY" -m pip install --quiet "torch==$TORCH_VERSION" \
    --extra-index-url "${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"

#!/bin/sh
# Install the declared lower bound of every direct dependency (pyproject.toml, "pkg>=X" ->
# "pkg==X") into .venv-lowest and run a test subset on them: the floors must install
# together and work. torch is the exception: scripts/install_torch.sh's pinned CPU build (the
# floor's CPU wheel is on the PyTorch index only, which CI machines may not reach).
set -eu
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3.11}"
VENV=.venv-lowest
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
sh scripts/install_torch.sh "$VENV/bin/python"
"$VENV/bin/python" - > "$VENV/floors.txt" <<'PYEOF'
import re, tomllib
meta = tomllib.load(open("pyproject.toml", "rb"))["project"]
reqs = meta["dependencies"] + meta["optional-dependencies"]["test"]
for r in reqs:
    m = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9][0-9A-Za-z.]*)", r.split(";")[0].strip())
    if m and m.group(1) != "torch":
        print(f"{m.group(1)}=={m.group(2)}")
PYEOF
"$VENV/bin/python" -m pip install --quiet -c "$VENV/floors.txt" -e ".[test]"
"$VENV/bin/python" -m pip list --format=freeze > "$VENV/installed.txt"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider -m "not slow" \
    tests/data tests/store tests/model tests/analysis tests/report tests/test_jobs.py tests/test_grid.py \
    tests/test_cli.py

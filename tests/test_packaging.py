"""environment.yml describes the same environment as pyproject.toml; .ci/run calls make test."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CONDA_NAMES = {
    "pytorch": "torch",
    "matplotlib-base": "matplotlib",
    "snakemake-minimal": "snakemake",
}


def _name(spec: str) -> str:
    return re.split(r"[ <>=!~\[]", spec.strip().strip('"'), maxsplit=1)[0].lower()


def _bound(spec: str) -> str | None:
    m = re.search(r">=\s*([0-9.]+)", spec)
    return m.group(1) if m else None


def test_environment_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pip = project["dependencies"] + project["optional-dependencies"]["test"]
    pip_specs = {_name(s): _bound(s) for s in pip}
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    # packages that conda-forge lacks sit in the pip section (the SLURM executor plugin)
    conda += [s for d in env["dependencies"] if isinstance(d, dict) for s in d["pip"]]
    conda = [s for s in conda if s != "-e ."]
    conda_specs = {CONDA_NAMES.get(_name(s), _name(s)): _bound(s) for s in conda}
    conda_specs = {k: v for k, v in conda_specs.items() if k not in ("python", "pip")}
    assert conda_specs == pip_specs
    assert "conda-forge" in env["channels"]
    assert any(isinstance(d, dict) and "-e ." in d["pip"] for d in env["dependencies"])


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    assert "make test" in ci and "make test" in readme and "make run" in readme

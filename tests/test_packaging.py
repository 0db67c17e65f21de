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


#: Imports of the package that are optional features, with the extra that installs them.
OPTIONAL_IMPORTS = {"tensorboard": "tensorboard", "torch.utils.tensorboard": "tensorboard"}


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> files of maestro/ importing it (module- and function-level)."""
    import ast
    import sys

    found: dict[str, set[str]] = {}
    for path in (REPO / "maestro").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "maestro" or name in OPTIONAL_IMPORTS:
                    continue
                found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def test_everything_the_package_imports_is_a_core_dependency():
    # `make run` installs the core dependencies only: an import served by a test extra
    # breaks the demo on a fresh machine while every test passes (it happened: the demo's
    # DINO-v2 baseline needed transformers, then only in the test extras)
    from importlib.metadata import packages_distributions

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = {_name(s) for s in project["dependencies"]}
    dists = packages_distributions()
    missing = {}
    for module, files in _third_party_imports().items():
        names = {d.lower() for d in dists.get(module, [module])}
        if not names & core:
            missing[module] = sorted(files)
    assert not missing, f"imported by maestro/ but not a core dependency: {missing}"
    extras = project["optional-dependencies"]
    assert all(any(_name(s) == x for s in extras[x]) for x in set(OPTIONAL_IMPORTS.values()))

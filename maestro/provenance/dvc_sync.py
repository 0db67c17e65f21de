"""Reconcile Snakemake's timestamps with files restored by ``dvc pull`` / ``dvc checkout``.

DVC restores files from a content-addressed cache in no particular order and with new
modification times, so Snakemake would see inputs newer than their outputs and rerun
finished jobs (docs/dvc.md; `--rerun-triggers` without `mtime` does not help, measured).
:func:`sync` runs ``snakemake --touch`` on the targets, with the profile and config file of
the DVC stages (``dvc.yaml`` vars), which marks every present output up to date in DAG
order and records Snakemake's metadata; a dry run then checks that nothing is left to do.
Missing outputs are never created: they stay scheduled and are reported.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from maestro.provenance.dvcio import dvc_vars

log = logging.getLogger(__name__)

DEFAULT_PROFILE = "profiles/local"
DEFAULT_CONFIGFILE = "config/config.yaml"
NOTHING = "Nothing to be done"


@dataclass
class SyncResult:
    """What :func:`sync` did and found."""

    touch_rc: int
    pending: dict[str, int] = field(default_factory=dict)  # rule -> jobs still scheduled
    output: str = ""  # the dry run's output (or the touch run's, when it failed)

    @property
    def clean(self) -> bool:
        """Whether the touch worked and the dry run schedules nothing."""
        return self.touch_rc == 0 and not self.pending


def snakemake_command(
    root: str | os.PathLike[str] = ".",
    profile: str | None = None,
    configfile: str | None = None,
) -> list[str]:
    """``python -m snakemake --profile P --configfile C`` with the stages' vars as defaults."""
    stage_vars = dvc_vars(root)
    return [
        sys.executable, "-m", "snakemake",
        "--profile", profile or stage_vars.get("profile", DEFAULT_PROFILE),
        "--configfile", configfile or stage_vars.get("configfile", DEFAULT_CONFIGFILE),
    ]  # fmt: skip


def pending_jobs(dry_run_output: str) -> dict[str, int]:
    """``{rule: count}`` from a dry run's "Job stats" table ({} when nothing is to be done)."""
    if NOTHING in dry_run_output or "Job stats:" not in dry_run_output:
        return {}
    table = dry_run_output[dry_run_output.index("Job stats:") :]
    return {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)$", table, re.M) if m[0] != "total"}


def sync(
    root: str | os.PathLike[str] = ".",
    profile: str | None = None,
    configfile: str | None = None,
    targets: Sequence[str] = ("all",),
    extra: Sequence[str] = (),
    echo: Callable[[str], None] = print,
) -> SyncResult:
    """Touch the outputs of ``targets`` in DAG order, then dry-run them (see module doc)."""
    base = [*snakemake_command(root, profile, configfile), *extra]

    def snakemake(mode: str) -> tuple[int, str]:
        echo("$ " + " ".join([*base[2:], mode, "--", *targets]))
        res = subprocess.run(
            [*base, mode, "--", *targets], cwd=Path(root), capture_output=True, text=True
        )
        out = res.stdout + res.stderr
        if res.returncode != 0:
            echo(out[-4000:])
        return res.returncode, out

    code, out = snakemake("--touch")
    if code != 0:
        return SyncResult(code, output=out)
    untouched = re.findall(r"Output files not touched because they don't exist: (.*)", out)
    code, out = snakemake("--dry-run")
    if code != 0:
        return SyncResult(code, output=out)
    result = SyncResult(0, pending_jobs(out), out)
    if result.pending:
        jobs = ", ".join(f"{rule} {n}" for rule, n in result.pending.items())
        echo(f"still scheduled after the touch: {jobs}")
        for line in untouched:
            echo(f"  missing outputs: {line}")
        echo("  fetch them (dvc pull <stage>) or build them (snakemake ... -- <target>)")
    else:
        echo(f"{NOTHING}: Snakemake's view matches the restored files.")
    return result

"""Pieces shared by the training loops: loaders, resumable state, logs."""

from __future__ import annotations

import csv
import io
import logging
import math
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from maestro.train import checkpoint, distributed
from maestro.train.distributed import Dist
from maestro.utils.atomic import write_text

log = logging.getLogger(__name__)


def steps_per_epoch(n_items: int, batch_size: int, cap: int | None) -> int:
    """Optimizer steps per epoch with ``drop_last`` and an optional cap."""
    steps = n_items // batch_size
    if steps == 0:
        raise ValueError(f"{n_items} training items cannot fill one batch of {batch_size}")
    return min(steps, cap) if cap else steps


def check_loss(loss: float, where: str, step: int) -> None:
    """Stop a run whose loss is NaN or infinite: it diverged, and every later step and the
    written weights would be garbage (docs/decisions.md T18).

    Raises:
        ValueError: where (phase and epoch), the step and the value.
    """
    if not math.isfinite(loss):
        raise ValueError(
            f"{where}: expected a finite training loss, found {loss} at step {step}: the run "
            "diverged (lower base_lr, or check the inputs for non-finite values); nothing written"
        )


def progress(iterable: Any, total: int, desc: str) -> Any:
    """A progress bar on terminals; plain iteration in logs (one line per epoch is logged)."""
    return tqdm(iterable, total=total, desc=desc, leave=False, disable=not sys.stderr.isatty())


class Resume:
    """Resumable state in a work directory (outside the rule's outputs).

    ``last.pt`` is rewritten atomically after every epoch; a payload whose fingerprint (the job
    config hash) differs from the current job is ignored, so a changed config never resumes
    from stale state.
    """

    def __init__(
        self, work_dir: str | Path | None, fingerprint: str, d: Dist | None = None
    ) -> None:
        self.dir = Path(work_dir) if work_dir else None
        self.fingerprint = fingerprint
        self.dist = d or Dist()

    @property
    def path(self) -> Path | None:
        """The checkpoint file, if resuming is enabled."""
        return self.dir / "last.pt" if self.dir else None

    def load(self) -> dict[str, Any] | None:
        """The saved payload of this job, or None."""
        if self.path is None or not self.path.exists():
            return None
        try:
            payload = checkpoint.load(self.path)
        except Exception as err:  # unreadable (a disk full, a copy cut short): start afresh
            aside = self.path.with_name(self.path.name + ".corrupt")
            if self.dist.is_main:
                self.path.replace(aside)
            log.warning(
                "%s cannot be read (%s: %s); moved to %s, starting afresh", self.path,
                type(err).__name__, err, aside,
            )  # fmt: skip
            return None
        if payload.get("fingerprint") != self.fingerprint:
            log.warning("%s belongs to another configuration; starting afresh", self.path)
            return None
        log.info("resuming from %s (epoch %d done)", self.path, payload["epoch"])
        return payload

    def save(self, payload: dict[str, Any]) -> None:
        """Store the payload with the fingerprint and every rank's RNG state (rank 0 writes)."""
        rng = distributed.gather(checkpoint.rng_state(), self.dist)
        if self.path is not None and self.dist.is_main:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            checkpoint.save(self.path, {**payload, "rng": rng, "fingerprint": self.fingerprint})
        distributed.barrier(self.dist)

    def restore_rng(self, payload: dict[str, Any]) -> None:
        """Put back this rank's RNG state (rank 0's if the world size changed)."""
        states = payload["rng"]
        checkpoint.set_rng_state(
            states[self.dist.rank] if len(states) == self.dist.world else states[0]
        )

    def clear(self) -> None:
        """Remove the work directory once the outputs are written."""
        distributed.barrier(self.dist)
        if self.dir is not None and self.dist.is_main:
            shutil.rmtree(self.dir, ignore_errors=True)


def write_csv(path: str | Path, rows: Sequence[dict[str, Any]]) -> None:
    """Atomically write rows (dicts sharing keys) as CSV."""
    buf = io.StringIO()
    keys = list(dict.fromkeys(k for r in rows for k in r))
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())

"""Optional TensorBoard scalars of the training histories (``runtime.tensorboard: true``).

Each epoch's history row (losses, metrics, learning rate, time) is also written as scalars
to ``<out_dir>/tensorboard/`` (``tensorboard --logdir results``), on the main rank only.
history.csv stays the record the pipeline reads; the event files are for watching a run.
Needs the ``tensorboard`` package (``pip install -e .[tensorboard]``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Folder of the event files inside a job's output folder.
FOLDER = "tensorboard"


class ScalarLog:
    """Writes history rows as scalars, step = epoch. Opened at once, so that a missing
    package stops the job before its first epoch, not after it."""

    def __init__(self, out_dir: str | Path) -> None:
        self.dir = Path(out_dir) / FOLDER
        self._writer: Any = self._open()

    def _open(self) -> Any:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:  # torch's writer imports the tensorboard package
            raise RuntimeError(
                "runtime.tensorboard is on but the tensorboard package is not installed: "
                "pip install -e '.[tensorboard]' (or set runtime.tensorboard: false)"
            ) from err
        return SummaryWriter(log_dir=str(self.dir))

    def add(self, row: Mapping[str, Any]) -> None:
        """Every finite numeric value of ``row`` except the epoch (its step)."""
        if self._writer is None:
            raise RuntimeError(f"{self.dir}: the TensorBoard log is closed")
        step = int(row["epoch"])
        for key, value in row.items():
            if key != "epoch" and isinstance(value, int | float) and math.isfinite(value):
                self._writer.add_scalar(key, float(value), step)
        self._writer.flush()

    def close(self) -> None:
        """Close the event file (again: a no-op)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

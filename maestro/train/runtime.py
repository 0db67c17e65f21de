"""Device, precision, threads and seeding: one place for the run-time environment."""

from __future__ import annotations

import contextlib
import logging
import os
import random
from dataclasses import dataclass, field

import numpy as np
import torch

from maestro.train import distributed
from maestro.train.distributed import Dist
from maestro.utils.cpu import CPU_BF16_FLAGS, cpu_has_bf16

log = logging.getLogger(__name__)

#: ``runtime.precision`` values. ``fp32``: no autocast (bit-reproducible on CPU). ``bf16``:
#: bf16 autocast of the forward pass (matmuls, attention); the losses, the master weights and
#: the optimizer state stay fp32. ``auto``: bf16 where the hardware has bf16 matrix
#: instructions (every CUDA GPU torch supports bf16 on; CPUs with AVX512-BF16 or AMX-BF16),
#: else fp32. Unset: bf16 on CUDA, fp32 on CPU.
PRECISIONS = ("auto", "fp32", "bf16")


def resolve_precision(precision: str | None, device: torch.device) -> str:
    """``fp32`` or ``bf16`` for ``runtime.precision`` on ``device`` (see :data:`PRECISIONS`)."""
    if precision is None:
        return "bf16" if device.type == "cuda" else "fp32"
    if precision not in PRECISIONS:
        raise ValueError(f"runtime.precision must be one of {PRECISIONS}, found {precision!r}")
    native = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_bf16()
    if precision == "auto":
        return "bf16" if native else "fp32"
    if precision == "bf16" and not native:
        log.warning(
            "runtime.precision bf16 on %s without native bf16 matrix instructions (%s): "
            "emulated, likely slower than fp32", device, ", ".join(CPU_BF16_FLAGS)
        )  # fmt: skip
    return precision


@dataclass(frozen=True)
class Runtime:
    """Where and how a job computes.

    ``precision``: ``fp32`` or ``bf16`` (autocast of the forward pass on CPU or CUDA; losses
    and optimizer state in fp32); :func:`resolve_precision` picks it.
    """

    device: torch.device
    precision: str
    threads: int
    compile: bool = False  # torch.compile the Transformer blocks (worth it on CUDA)
    tensorboard: bool = False  # also log history rows as TensorBoard scalars
    dist: Dist = field(default_factory=Dist)  # rank and world size under torchrun / srun

    @property
    def amp(self) -> bool:
        """Whether the forward pass runs under bf16 autocast."""
        return self.precision == "bf16"

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context of this runtime (bf16 on the job's device type, else none)."""
        if self.amp:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def describe(self) -> dict[str, object]:
        """Device facts for provenance."""
        info: dict[str, object] = {
            "device": str(self.device),
            "precision": self.precision,
            "amp_bf16": self.amp,
            "threads": self.threads,
            "compile": self.compile,
            "world_size": self.dist.world,
        }
        if self.device.type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(self.device)
            info["cuda"] = torch.version.cuda
        return info


def make_runtime(
    device: str = "auto",
    gpus: int | None = None,
    threads: int | None = None,
    compile: bool = False,
    tensorboard: bool = False,
    precision: str | None = None,
) -> Runtime:
    """Resolve the device (``auto`` picks CUDA when available and ``gpus`` is not 0) and the
    precision (:func:`resolve_precision`)."""
    if threads:
        torch.set_num_threads(threads)
    if device == "auto":
        use_cuda = torch.cuda.is_available() and (gpus is None or gpus > 0)
        device = "cuda" if use_cuda else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but CUDA is not available")
    d = distributed.init(dev.type)
    if dev.type == "cuda":
        if d.active:  # one GPU per process
            dev = torch.device("cuda", d.local_rank)
        torch.cuda.set_device(dev)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    threads = torch.get_num_threads()
    return Runtime(
        dev, precision=resolve_precision(precision, dev), threads=threads, compile=compile,
        tensorboard=tensorboard, dist=d,
    )  # fmt: skip


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (legacy global RNG some libraries still use)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)


def to_device(batch: object, device: torch.device) -> object:
    """Move every tensor of a nested dict/list batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(v, device) for v in batch)
    return batch

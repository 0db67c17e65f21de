"""Device, precision, threads and seeding: one place for the run-time environment."""

from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass, field

import numpy as np
import torch

from maestro.train import distributed
from maestro.train.distributed import Dist


@dataclass(frozen=True)
class Runtime:
    """Where and how a job computes.

    ``amp``: bf16 autocast (CUDA only; CPU runs in fp32 so results are reproducible).
    """

    device: torch.device
    amp: bool
    threads: int
    compile: bool = False  # torch.compile the Transformer blocks (worth it on CUDA)
    tensorboard: bool = False  # also log history rows as TensorBoard scalars
    dist: Dist = field(default_factory=Dist)  # rank and world size under torchrun / srun

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context of this runtime."""
        if self.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def describe(self) -> dict[str, object]:
        """Device facts for provenance."""
        info: dict[str, object] = {
            "device": str(self.device),
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
) -> Runtime:
    """Resolve the device: ``auto`` picks CUDA when available and ``gpus`` is not 0."""
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
        dev, amp=dev.type == "cuda", threads=threads, compile=compile, tensorboard=tensorboard,
        dist=d,
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

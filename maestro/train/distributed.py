"""Data-parallel training across processes (DDP), launched by ``torchrun`` or ``srun``.

One process per device. ``torchrun --nproc_per_node=N -m maestro.cli pretrain ...`` sets
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address; under ``srun`` they are
derived from SLURM's task variables. :func:`init` opens the process group (NCCL on CUDA,
gloo on CPU). Without those variables everything runs in one process and every helper here
is a no-op.

- Training batches: a :class:`DistributedSampler` (shuffled by ``(seed, epoch)``, last
  incomplete batch dropped); the total batch, which sets the learning rate, is
  ``batch_size * world``.
- Evaluation: each rank takes every ``world``-th item of the split, without the padding a
  DistributedSampler would add, and metric counts are summed across ranks.
- Only rank 0 writes files; the others wait at a barrier.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset


@dataclass(frozen=True)
class Dist:
    """This process's place in the job."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Whether this process writes outputs."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """Whether several processes take part."""
        return self.world > 1


def _from_slurm() -> None:
    """Map ``srun``'s task variables to torch's when not launched by torchrun.

    ``srun -n N python -m maestro.cli ...`` then runs N data-parallel tasks; the node that
    launched them hosts the rendezvous (``MASTER_ADDR``/``MASTER_PORT`` may be set to override).
    """
    env = os.environ
    if "WORLD_SIZE" in env or int(env.get("SLURM_NTASKS", "1")) <= 1 or "SLURM_PROCID" not in env:
        return
    env["WORLD_SIZE"] = env["SLURM_NTASKS"]
    env["RANK"] = env["SLURM_PROCID"]
    env["LOCAL_RANK"] = env.get("SLURM_LOCALID", "0")
    env.setdefault("MASTER_ADDR", env.get("SLURM_LAUNCH_NODE_IPADDR", "127.0.0.1"))
    env.setdefault("MASTER_PORT", str(20000 + int(env.get("SLURM_JOB_ID", "0")) % 20000))


def init(device_type: str) -> Dist:
    """Open the process group when launched by torchrun or srun with more than one process."""
    _from_slurm()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return Dist(rank=rank, world=world, local_rank=local)


def train_loader(
    ds: Dataset, batch: int, seed: int, epoch: int, workers: int, d: Dist, generator_seed: int
) -> DataLoader:
    """Shuffled training batches of this rank (drop-last)."""
    if not d.active:
        g = torch.Generator().manual_seed(generator_seed)
        return DataLoader(
            ds, batch_size=batch, shuffle=True, drop_last=True, num_workers=workers, generator=g
        )
    sampler = DistributedSampler(
        ds, num_replicas=d.world, rank=d.rank, shuffle=True, seed=seed, drop_last=True
    )
    sampler.set_epoch(epoch)
    return DataLoader(ds, batch_size=batch, sampler=sampler, drop_last=True, num_workers=workers)


def eval_loader(ds: Dataset, batch: int, d: Dist) -> DataLoader:
    """This rank's share of an evaluation split, in order, every item exactly once overall."""
    part = ds if not d.active else Subset(ds, list(range(d.rank, len(ds), d.world)))
    return DataLoader(part, batch_size=batch, shuffle=False, drop_last=False)


def wrap(model: torch.nn.Module, device: torch.device, d: Dist) -> torch.nn.Module:
    """The module to call for training steps (DDP when several processes take part)."""
    if not d.active:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def sum_(t: torch.Tensor, d: Dist) -> torch.Tensor:
    """Sum a tensor across ranks, in place; returns it."""
    if d.active:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def gather(obj: Any, d: Dist) -> list[Any]:
    """Every rank's ``obj``, in rank order."""
    if not d.active:
        return [obj]
    out: list[Any] = [None] * d.world
    dist.all_gather_object(out, obj)
    return out


def check_in_sync(model: torch.nn.Module, d: Dist) -> None:
    """Raise if the ranks ended with different weights (DDP keeps them equal by design)."""
    if not d.active:
        return
    with torch.no_grad():
        digest = float(sum(p.detach().double().sum() for p in model.parameters()).cpu())
    digests = gather(digest, d)
    if len(set(digests)) > 1:
        raise RuntimeError(f"ranks diverged: parameter sums {digests}")


def barrier(d: Dist) -> None:
    """Wait for every rank."""
    if d.active:
        dist.barrier()

"""Process-group plumbing of a training run: who this process is, and the few collectives the engine needs.

A single process (no ``WORLD_SIZE`` > 1 in the environment) gets ``DistInfo()`` and every helper here is then a no-op,
so the engine calls them unconditionally. Launch several processes with torchrun (or SLURM, whose
``SLURM_PROCID``/``SLURM_NPROCS``/``SLURM_LOCALID`` are mapped to torchrun's variables): NCCL on CUDA, gloo on CPU.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from paperlib.engine.evaluate import unwrap


# Collective timeout (s) until training starts: joining the group, each rank building its datasets, the run
# directory's broadcast and DDP's first parameter broadcast take as long as the slowest rank needs (minutes on a busy
# machine or a cold file system), while train.ddp_timeout_s bounds how long a rank waits for a dead peer in training.
STARTUP_TIMEOUT_S = 600.0


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    timeout_s: float = 600.0  # collective timeout once training runs (train.ddp_timeout_s)
    steady: bool = False  # has the training-phase timeout replaced the start-up one?

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(timeout_s: float = 600.0, device_name: str = "auto",
                     startup_timeout_s: float = STARTUP_TIMEOUT_S) -> DistInfo:
    """Join the process group described by torchrun's (or SLURM's) environment; a no-op for a single process.

    Collectives time out after ``max(timeout_s, startup_timeout_s)`` until :func:`enter_training` sets ``timeout_s``
    (the engine calls it at the first training step): a slow start of one rank is waited for, a rank that dies in
    training ends the others within ``timeout_s``."""
    env = os.environ
    if "RANK" not in env and "SLURM_PROCID" in env and int(env.get("SLURM_NPROCS", "1")) > 1:
        env["RANK"], env["WORLD_SIZE"] = env["SLURM_PROCID"], env["SLURM_NPROCS"]
        env["LOCAL_RANK"] = env.get("SLURM_LOCALID", "0")
    world = int(env.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(env["RANK"]), world, int(env.get("LOCAL_RANK", "0")), timeout_s=float(timeout_s))
    if not dist.is_initialized():
        missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if k not in env]
        if missing:
            raise RuntimeError(f"distributed run (WORLD_SIZE={world}) without {missing}: launch with torchrun, or "
                               "export MASTER_ADDR/MASTER_PORT in the batch script")
        use_cuda = torch.cuda.is_available() and device_name != "cpu"
        if use_cuda:
            torch.cuda.set_device(info.local_rank)
        start = max(float(timeout_s), float(startup_timeout_s))
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(seconds=start))
    return info


def enter_training(dinfo: DistInfo) -> None:
    """Set the training-phase collective timeout (``dinfo.timeout_s``) on the default group, once per process (a
    no-op for a single process and after the first call)."""
    if not dinfo.enabled or dinfo.steady or not dist.is_initialized():
        return
    from torch.distributed import distributed_c10d

    distributed_c10d._set_pg_timeout(datetime.timedelta(seconds=dinfo.timeout_s))  # private in torch 2.x
    dinfo.steady = True


def broadcast_object(obj: Any, dinfo: DistInfo) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not dinfo.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather_object(obj: Any, dinfo: DistInfo) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not dinfo.enabled:
        return [obj]
    out: list[Any] = [None] * dinfo.world_size
    dist.all_gather_object(out, obj)
    return out


def any_rank(flag: bool, dinfo: DistInfo, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any rank (all ranks must call it together)."""
    if not dinfo.enabled:
        return flag
    t = torch.tensor([float(flag)], device=device if device.type == "cuda" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def sync_buffers(model: nn.Module, dinfo: DistInfo) -> None:
    """Give every rank rank 0's buffers (BatchNorm statistics).

    On CPU (no SyncBatchNorm) each rank's statistics drift apart after DDP's pre-forward broadcast; the engine calls
    this before evaluating or saving, so all ranks hold identical models.
    """
    if dinfo.enabled:
        for b in unwrap(model).buffers():
            dist.broadcast(b, src=0)


def parameter_digest(model: nn.Module) -> str:
    """sha256 of all parameters and buffers (bytes), to prove ranks hold identical models."""
    h = hashlib.sha256()
    for name, t in sorted(unwrap(model).state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()

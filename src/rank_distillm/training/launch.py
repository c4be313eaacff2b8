"""Running a training function in several data-parallel processes on one machine.

What ``torchrun --standalone --nproc-per-node N`` does, from Python (torch's own launcher,
``torch.distributed.launcher``), so a Snakemake rule can train on the N GPUs its job was
given: N processes (started fresh, not forked: the parent may hold threads and CUDA),
each with torch.distributed's environment (rank, world size, the rendezvous store on
127.0.0.1). Standalone rendezvous binds its store to a port the system picks and the
workers join that store, so no port is chosen before it is bound (another process cannot
take it in between). In each process, ``accelerate.Accelerator`` finds that environment
and joins the process group: NCCL on GPUs (one GPU per process), gloo on CPUs (tests,
and machines without GPUs).
"""

from __future__ import annotations

import logging
import os
import signal
import uuid
from collections.abc import Callable
from typing import Any

import torch
from torch.distributed.launcher.api import LaunchConfig, elastic_launch

LOGGER = logging.getLogger(__name__)
#: What torch's launcher installs handlers for (LaunchConfig.signals_to_handle).
_LAUNCHER_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


def _worker(threads: int, function: Callable[..., Any], args: tuple, level: int) -> None:
    rank = int(os.environ["RANK"])  # set by the launcher, with the rest of the environment
    os.environ["OMP_NUM_THREADS"] = str(threads)  # accelerate would pick its own
    torch.set_num_threads(threads)
    # Every process writes to the job's log (inherited stderr); the others only warnings.
    logging.basicConfig(
        level=level if rank == 0 else max(level, logging.WARNING),
        format=f"%(asctime)s %(levelname)s [process {rank}] %(name)s: %(message)s",
    )
    function(*args)


def training_processes(gpus: int) -> int:
    """Processes for a training job granted ``gpus`` GPUs (config compute.train_gpus): one
    per GPU, or one on a machine without GPUs when one was asked for (CPU training)."""
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus > 1 and available < gpus:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
        raise RuntimeError(
            f"compute.train_gpus asks for {gpus} GPUs per training job, but torch sees "
            f"{available} (CUDA_VISIBLE_DEVICES={visible}); request the GPUs from the "
            "cluster, or set compute.train_gpus to 1"
        )
    return max(gpus, 1) if available else 1


def launch(processes: int, function: Callable[..., Any], *args: Any, threads: int = 1) -> None:
    """Call ``function(*args)`` in ``processes`` data-parallel processes (or here, for
    one), each with ``threads`` torch threads. An exception in any process stops the
    others and is raised here (torch's ``ChildFailedError``, naming the process)."""
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    if processes == 1:
        function(*args)
        return
    if torch.cuda.is_available() and torch.cuda.device_count() < processes:
        raise RuntimeError(
            f"{processes} training processes need {processes} GPUs; "
            f"torch sees {torch.cuda.device_count()}"
        )
    LOGGER.info("launching %d data-parallel training processes", processes)
    level = logging.getLogger().getEffectiveLevel()
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # one machine: loopback
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=processes,
        run_id=f"rank-distillm-{uuid.uuid4().hex[:8]}",
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",  # standalone: the store binds a free port itself
        max_restarts=0,
        start_method="spawn",
    )
    # The launcher handles these signals while it runs (a SLURM preemption's SIGTERM stops
    # the workers); the caller's own handlers are back once it returns or raises.
    handlers = {number: signal.getsignal(number) for number in _LAUNCHER_SIGNALS}
    try:
        elastic_launch(config, _worker)(threads, function, args, level)
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)

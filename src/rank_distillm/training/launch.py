"""Running a training function in several data-parallel processes on one machine.

What ``accelerate launch --num_processes N`` does, from Python, so a Snakemake rule can
train on the N GPUs its job was given: N processes (started fresh, not forked: the
parent may hold threads and CUDA), each with torch.distributed's environment (rank,
world size, a free port on 127.0.0.1). In each, ``accelerate.Accelerator`` finds that
environment and joins the process group: NCCL on GPUs (one GPU per process), gloo on
CPUs (tests, and machines without GPUs).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import Any

import torch

LOGGER = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _worker(
    rank: int,
    processes: int,
    port: int,
    threads: int,
    function: Callable[..., Any],
    args: tuple,
    level: int,
) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(processes),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE=str(processes),
    )
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # one machine: loopback
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
    one), each with ``threads`` torch threads. An exception in any process is raised
    here once all have ended."""
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
    torch.multiprocessing.start_processes(
        _worker,
        args=(processes, free_port(), threads, function, args, level),
        nprocs=processes,
        join=True,
        start_method="spawn",
    )

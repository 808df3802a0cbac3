"""The device a worker trains on: the one Ray assigned it, not ``cuda:{local_rank}``.

Ray Train sets ``CUDA_VISIBLE_DEVICES`` per worker (on a node with several GPUs, the
union of the node's workers' GPUs), so a worker's GPU need not be its local rank's index;
``ray.train.torch.get_device()`` knows which it is. A sweep's 1-worker trial trains in its
Tune actor, which Ray gave a GPU of its own: the one ``ray.get_gpu_ids()`` names, counted
in the numbering ``CUDA_VISIBLE_DEVICES`` leaves this process.
"""
from __future__ import annotations

import os

import ray
import torch


class NoAssignedGPUError(RuntimeError):
    """A GPU run in a process Ray gave no GPU."""


def visible_index(gpu_id: str | int, cuda_visible_devices: str | None) -> int:
    """The CUDA index in this process of the GPU Ray calls ``gpu_id``.

    Ray names GPUs as the node sees them and sets ``CUDA_VISIBLE_DEVICES`` to those it gives
    the process, which renumbers them from 0 in the list's order; with the variable unset
    (or empty, or Ray's ``NoDevFiles``), the process sees every GPU under the node's own numbering.
    """
    listed = "" if cuda_visible_devices == "NoDevFiles" else cuda_visible_devices or ""
    visible = [d.strip() for d in listed.split(",") if d.strip()]
    if not visible:
        return int(gpu_id)
    try:
        return visible.index(str(gpu_id))
    except ValueError:
        raise NoAssignedGPUError(f"Ray assigned GPU {gpu_id}, but CUDA_VISIBLE_DEVICES={cuda_visible_devices!r} "
                                 "hides it from this process") from None


def actor_gpu(gpu_ids: list, cuda_visible_devices: str | None) -> torch.device:
    """The device of a Ray actor's (or task's) first assigned GPU (the lowest id, as Ray Train picks)."""
    if not gpu_ids:
        raise NoAssignedGPUError("a GPU run in a Ray process that was assigned no GPU (ray.get_gpu_ids() is empty); "
                                 "reserve a GPU for it (num_gpus / resources_per_trial)")
    first = min(gpu_ids, key=lambda g: (int(g) if str(g).isdigit() else float("inf"), str(g)))
    return torch.device("cuda", visible_index(first, cuda_visible_devices))


def assigned_device(use_gpu: bool, in_train_worker: bool) -> torch.device:
    """Where this process trains: the CPU, or the GPU Ray assigned it (a Ray Train worker's
    through Ray Train; a Tune actor's through its GPU ids). Outside Ray: the current GPU."""
    if not use_gpu:
        return torch.device("cpu")
    if in_train_worker:
        from ray.train.torch import get_device  # deferred: a Tune actor's trial never needs Ray Train's torch

        return get_device()
    if not ray.is_initialized():
        return torch.device("cuda", torch.cuda.current_device())
    return actor_gpu(ray.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES"))

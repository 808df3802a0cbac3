"""DDP for the workers' models: MMEngine's wrapper, made to accept CPU modules."""
from __future__ import annotations

from mmengine.model import MMDistributedDataParallel


class CPUFriendlyDDP(MMDistributedDataParallel):
    """MMEngine's DDP wrapper that also works for CPU modules, and on the GPU the module is on.

    MMEngine passes ``device_ids=[LOCAL_RANK]``, which torch's DDP rejects for a
    module on the CPU (gloo workers under Ray Train); CPU DDP wants ``None``. On a GPU
    the module is where the worker put it, the GPU Ray assigned (``train.devices``),
    which need not be the local rank's index.
    """

    def __init__(self, module, device_ids=None, **kwargs):
        device = next(module.parameters()).device
        super().__init__(module=module, device_ids=None if device.type == "cpu" else [device.index], **kwargs)

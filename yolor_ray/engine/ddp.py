"""DDP for the workers' models: MMEngine's wrapper, made to accept CPU modules."""
from __future__ import annotations

from mmengine.model import MMDistributedDataParallel


class CPUFriendlyDDP(MMDistributedDataParallel):
    """MMEngine's DDP wrapper that also works for CPU modules.

    MMEngine passes ``device_ids=[LOCAL_RANK]``, which torch's DDP rejects for a
    module on the CPU (gloo workers under Ray Train); CPU DDP wants ``None``.
    """

    def __init__(self, module, device_ids=None, **kwargs):
        on_cpu = next(module.parameters()).device.type == "cpu"
        super().__init__(module=module, device_ids=None if on_cpu else device_ids, **kwargs)

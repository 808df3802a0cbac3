"""Everything yolor-ray registers into MMEngine's and mmdet's registries, in one place.

Configs name this module so that MMEngine's Runner, mmdet's own tools and our workers
can build the types below (and mmcv's ops without a bf16 kernel fall back to float32,
``engine.low_precision``)::

    custom_imports = dict(imports=['yolor_ray.registrations'], allow_failed_imports=False)

Importing ``yolor_ray`` itself registers nothing.
"""
from mmdet.registry import METRICS, MODELS, TRANSFORMS
from mmengine.registry import HOOKS, MODEL_WRAPPERS, OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, VISBACKENDS
from mmengine.runner import CheckpointLoader

from yolor_ray.engine.checkpoint import TRUSTED_PREFIX, load_trusted_checkpoint
from yolor_ray.engine.coco_metric import UnroundedCocoMetric
from yolor_ray.engine.ddp import CPUFriendlyDDP
from yolor_ray.engine.hooks import StorageLogHook
from yolor_ray.engine.low_precision import install_fp32_fallback
from yolor_ray.engine.mlflow_run import StatusMLflowVisBackend
from yolor_ray.engine.optim import BF16OptimWrapper, YOLOROptimWrapperConstructor
from yolor_ray.engine.transforms import LoadImageOrSkip
from yolor_ray.implicit import YOLOR_TYPE, build_yolor
from yolor_ray.metrics import PROJECT_COCO_METRIC

REGISTERED = (
    (MODELS, YOLOR_TYPE, build_yolor),  # type='YOLOR': a detector plus implicit knowledge
    (MODEL_WRAPPERS, "CPUFriendlyDDP", CPUFriendlyDDP),
    (OPTIM_WRAPPER_CONSTRUCTORS, "YOLOROptimWrapperConstructor", YOLOROptimWrapperConstructor),
    (OPTIM_WRAPPERS, "BF16OptimWrapper", BF16OptimWrapper),
    (TRANSFORMS, "LoadImageOrSkip", LoadImageOrSkip),
    (HOOKS, "StorageLogHook", StorageLogHook),
    (VISBACKENDS, "StatusMLflowVisBackend", StatusMLflowVisBackend),  # --tracker mlflow
    (METRICS, PROJECT_COCO_METRIC, UnroundedCocoMetric),  # every CocoMetric of a run (config.use_project_coco_metric)
)

for registry, name, module in REGISTERED:
    registry.register_module(name=name, module=module)
CheckpointLoader.register_scheme(prefixes=TRUSTED_PREFIX, loader=load_trusted_checkpoint)
install_fp32_fallback()

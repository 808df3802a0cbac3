"""The edits that adapt a loaded config to a run: its dataset, the small scale, epochs, batch
and its recipe, mixed precision, YOLOR's optimizer recipe, a warm start's schedule, unreadable
images skipped, the cuDNN autotuner, and what a run reports (TensorBoard, per-class AP,
results gathered over the process group).

Each edit takes values already checked where the run's spec was made (``train.spec``: one set
of bounds) and does no I/O; an edit raises only for a config it cannot apply to (a small
scale without a ResNet backbone, an iteration-based schedule)."""
from __future__ import annotations

import copy
from typing import Any

from mmengine.config import Config, ConfigDict

from yolor_ray.config.load import ConfigError
from yolor_ray.config.parts import evaluators, has_mask_head, innermost_dataset
from yolor_ray.data.coco import CocoSplitInfo
from yolor_ray.implicit import YOLOR_TYPE, ImplicitConfigError, split_yolor_cfg, yolor_model_cfg
from yolor_ray.metrics import COCO_METRIC_TYPES, PROJECT_COCO_METRIC

# The "small" scale: what lets every family train on a 2-core CPU from scratch.
SMALL_DEPTH = 18
SMALL_CHANNELS = [64, 128, 256, 512]  # ResNet-18/34 stage outputs
FULL_WIDTH, SMALL_WIDTH = 256, 128  # neck and head channels


def use_coco_folder(cfg: Config, train: CocoSplitInfo, val: CocoSplitInfo) -> None:
    """Point the train/val/test dataloaders and evaluators at a COCO-layout folder."""
    metainfo = dict(classes=train.classes)
    for name, split in (("train_dataloader", train), ("val_dataloader", val), ("test_dataloader", val)):
        innermost_dataset(cfg[name]).update(data_root="", ann_file=str(split.ann_file), metainfo=metainfo,
                                            data_prefix=dict(img=str(split.image_dir) + "/"))
    for evaluator in evaluators(cfg):
        if evaluator.get("type") in COCO_METRIC_TYPES:
            evaluator["ann_file"] = str(val.ann_file)
    set_num_classes(cfg.model, len(train.classes))


def set_num_classes(model_cfg: Any, num_classes: int) -> None:
    """Set every ``num_classes`` in a model config (all heads, all stages)."""
    if isinstance(model_cfg, dict):
        for key, value in model_cfg.items():
            if key == "num_classes":
                model_cfg[key] = num_classes
            else:
                set_num_classes(value, num_classes)
    elif isinstance(model_cfg, (list, tuple)):
        for item in model_cfg:
            set_num_classes(item, num_classes)


def make_small(cfg: Config, image_size: int = 256) -> None:
    """Shrink any supported detector to train from scratch on a CPU in minutes.

    ResNet-18 backbone with trainable BN and no pretrained weights, FPN input channels
    to match, neck and head widths halved (every ``*channels`` of 256 becomes 128), one
    fixed image scale, a short warm-up, single-process data loading. The heads keep
    their structure, so a small run exercises the same code paths.
    """
    backbone = cfg.model.get("backbone", {})
    if backbone.get("type") != "ResNet":
        raise ConfigError(f"the small scale needs a ResNet backbone, got {backbone.get('type')!r}")
    backbone.update(depth=SMALL_DEPTH, style="pytorch", frozen_stages=-1, norm_eval=False,
                    norm_cfg=dict(type="BN", requires_grad=True), init_cfg=None)
    neck = cfg.model.get("neck")
    if isinstance(neck, dict) and "in_channels" in neck:
        out_indices = backbone.get("out_indices", (0, 1, 2, 3))
        neck["in_channels"] = [SMALL_CHANNELS[i] for i in out_indices]

    for key, part in cfg.model.items():
        if key not in ("backbone", "data_preprocessor"):
            _narrow(part, FULL_WIDTH, SMALL_WIDTH)

    with_mask = has_mask_head(cfg)
    scale = (image_size, image_size)
    train_pipeline = [
        dict(type="LoadImageFromFile"),
        dict(type="LoadAnnotations", with_bbox=True, with_mask=with_mask),
        dict(type="Resize", scale=scale, keep_ratio=True),
        dict(type="RandomFlip", prob=0.5),
        dict(type="PackDetInputs"),
    ]
    test_pipeline = [
        dict(type="LoadImageFromFile"),
        dict(type="Resize", scale=scale, keep_ratio=True),
        dict(type="LoadAnnotations", with_bbox=True, with_mask=with_mask),
        dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")),
    ]
    for name, pipeline in (("train_dataloader", train_pipeline), ("val_dataloader", test_pipeline),
                           ("test_dataloader", test_pipeline)):
        cfg[name].update(num_workers=0, persistent_workers=False)
        cfg[name].dataset.pipeline = copy.deepcopy(pipeline)
    cfg.train_dataloader.dataset.filter_cfg = dict(filter_empty_gt=True, min_size=4)
    # From scratch on a few hundred iterations: a 50-iteration warm-up instead of 500;
    # the epoch-based steps stay (set_epochs rescales them).
    epoch_schedulers = [s for s in cfg.get("param_scheduler") or [] if s.get("by_epoch", True)]
    cfg.param_scheduler = [dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=50),
                           *epoch_schedulers]
    cfg.auto_scale_lr = dict(enable=True, base_batch_size=16)
    cfg.default_hooks.logger.interval = 10
    cfg.log_processor = dict(type="LogProcessor", window_size=10, by_epoch=True)


def _narrow(node: Any, old: int, new: int) -> None:
    """Replace ``old`` by ``new`` in every ``*channels``/``*channel`` key of a config tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, int) and key.endswith(("channels", "channel")) and value == old:
                node[key] = new
            else:
                _narrow(value, old, new)
    elif isinstance(node, (list, tuple)):
        for item in node:
            _narrow(item, old, new)


def set_epochs(cfg: Config, epochs: int) -> None:
    """Train for ``epochs``; LR steps of a MultiStepLR move with it (at 2/3 and 11/12)."""
    if cfg.train_cfg.get("type") != "EpochBasedTrainLoop":
        raise ConfigError(f"only epoch-based configs are supported, got train_cfg.type={cfg.train_cfg.get('type')!r}")
    old = cfg.train_cfg.max_epochs
    cfg.train_cfg.max_epochs = epochs
    for scheduler in cfg.get("param_scheduler") or []:
        if scheduler.get("by_epoch", True):
            if scheduler.get("end", 0) == old or scheduler.get("end", 0) > epochs:
                scheduler["end"] = epochs
            if "milestones" in scheduler:
                scheduler["milestones"] = sorted({max(1, round(m * epochs / old)) for m in scheduler["milestones"]
                                                  if round(m * epochs / old) < epochs})


def set_implicit(cfg: Config, implicit: dict) -> None:
    """Make the model a YOLOR variant with ``implicit`` over its own implicit settings
    (a baseline becomes ``type='YOLOR', detector=<its type>``)."""
    detector_cfg, own = split_yolor_cfg(cfg.model)
    merged = {**(own or {}), **implicit}
    try:
        cfg.model = ConfigDict(yolor_model_cfg(detector_cfg, merged))
    except ImplicitConfigError as err:
        raise ConfigError(f"implicit settings {merged!r}: {err}") from None


def set_batch_size(cfg: Config, batch_size: int) -> None:
    cfg.train_dataloader.batch_size = batch_size


REFERENCE_TOTAL_BATCH = 16  # the reference table's 8 GPUs x 2 images, the batch mmdet's learning rates are set for
IMAGES_PER_LOADER_WORKER = 2  # mmdet's own ratio: 2 images, 2 loader workers per GPU


def use_batch_recipe(cfg: Config, cpus_per_worker: int) -> None:
    """The reference table's batch on any number of workers (docs/cluster.md, "The reference table's batch on fewer
    GPUs"): the learning rate follows the total batch (MMEngine's ``auto_scale_lr``, linear
    in workers x images per worker, against the config's ``base_batch_size``, the reference table's 16
    where it names none), and each worker gets a data-loader process per 2 images of its
    batch, as many as its CPUs allow beside the training process (never fewer than the
    config asks for; ``--small`` loads in the training process)."""
    base = (cfg.get("auto_scale_lr") or {}).get("base_batch_size", REFERENCE_TOTAL_BATCH)
    cfg.auto_scale_lr = dict(enable=True, base_batch_size=base)
    loader = cfg.train_dataloader
    if loader.get("num_workers", 0) > 0:
        wanted = -(-loader.batch_size // IMAGES_PER_LOADER_WORKER)
        loader.num_workers = max(loader.num_workers, min(wanted, cpus_per_worker - 1))


def use_cudnn_autotuner_where_shapes_are_fixed(cfg: Config) -> bool:
    """cuDNN's autotuner (``env_cfg.cudnn_benchmark``) pays when every batch has one shape and
    costs a search at every new shape otherwise: on when the training pipeline ends in a fixed
    size (a ``Resize`` with ``keep_ratio=False`` and one scale, or a ``Pad`` to a ``size``), or
    the data preprocessor pads every batch to one size; left as the config has it otherwise.
    Returns whether it is on."""
    pipeline = innermost_dataset(cfg.train_dataloader).get("pipeline") or []
    fixed = any(
        (step.get("type") == "Resize" and not step.get("keep_ratio", False) and _one_size(step.get("scale")))
        or (step.get("type") == "Pad" and step.get("size") is not None) for step in pipeline)
    fixed = fixed or any(aug.get("type") == "BatchFixedSizePad"
                         for aug in (cfg.model.get("data_preprocessor") or {}).get("batch_augments") or [])
    if fixed:
        cfg.setdefault("env_cfg", {})["cudnn_benchmark"] = True
    return bool(cfg.get("env_cfg", {}).get("cudnn_benchmark", False))


def _one_size(scale: Any) -> bool:
    return isinstance(scale, (tuple, list)) and len(scale) == 2 and all(isinstance(v, int) for v in scale)


AMP_WRAPPERS = {"fp16": "AmpOptimWrapper", "bf16": "BF16OptimWrapper"}


def set_amp(cfg: Config, mode: str) -> None:
    """Mixed precision: fp16 with MMEngine's AmpOptimWrapper (GPU, dynamic loss scale), bf16 with
    our BF16OptimWrapper (GPU or CPU; bf16 keeps fp32's range, so no loss scale)."""
    wrapper = cfg.optim_wrapper
    if wrapper.get("type", "OptimWrapper") not in ("OptimWrapper", *AMP_WRAPPERS.values()):
        raise ConfigError(f"--amp needs optim_wrapper.type OptimWrapper, got {wrapper.get('type')!r}")
    wrapper["type"] = AMP_WRAPPERS[mode]
    if mode == "fp16":
        wrapper.setdefault("loss_scale", "dynamic")
    else:
        wrapper.pop("loss_scale", None)


IMPLICIT_CONSTRUCTOR = "YOLOROptimWrapperConstructor"


def use_implicit_recipe(cfg: Config) -> None:
    """YOLOR's recipe for a YOLOR model: its implicit tensors out of weight decay
    (``implicit.weight_decay=False``, the default), through our optim-wrapper constructor."""
    if cfg.model.get("type") != YOLOR_TYPE or cfg.get("optim_wrapper") is None:
        return
    constructor = cfg.optim_wrapper.get("constructor", "DefaultOptimWrapperConstructor")
    if constructor not in ("DefaultOptimWrapperConstructor", IMPLICIT_CONSTRUCTOR):
        raise ConfigError(f"optim_wrapper.constructor {constructor!r} cannot keep implicit tensors out of weight "
                          f"decay; use {IMPLICIT_CONSTRUCTOR!r} (MMEngine's default plus that rule) or none")
    cfg.optim_wrapper["constructor"] = IMPLICIT_CONSTRUCTOR


SKIPPING_LOADER = "LoadImageOrSkip"


def skip_unreadable_images(cfg: Config) -> None:
    """Training skips an image that cannot be read (another one is drawn; counted in the log)
    instead of stopping the run; validation still needs every image (checked up front)."""
    for step in innermost_dataset(cfg.train_dataloader).get("pipeline") or []:
        if isinstance(step, dict) and step.get("type") == "LoadImageFromFile":
            step["type"] = SKIPPING_LOADER


TENSORBOARD_BACKEND = "TensorboardVisBackend"


def use_tensorboard(cfg: Config) -> None:
    """Rank 0 also writes TensorBoard event files (MMEngine's TensorboardVisBackend: every
    scalar the logger hook logs, losses, LR and COCO APs) beside its scalars.json, in the
    log folder that goes to the run's storage (``logs/TIMESTAMP/vis_data/``)."""
    visualizer = cfg.get("visualizer")
    if visualizer is None:
        cfg.visualizer = visualizer = ConfigDict(type="Visualizer", vis_backends=[dict(type="LocalVisBackend")])
    backends = visualizer.get("vis_backends") or []
    if not any(backend.get("type") == TENSORBOARD_BACKEND for backend in backends):
        visualizer["vis_backends"] = [*backends, dict(type=TENSORBOARD_BACKEND)]


def use_classwise_ap(cfg: Config) -> None:
    """Every CocoMetric also reports each class's AP (its ``classwise``), unless the config
    says otherwise: ``coco/CLASS_precision``, in results.json's ``per_class_ap``."""
    for evaluator in evaluators(cfg):
        if evaluator.get("type") in COCO_METRIC_TYPES:
            evaluator.setdefault("classwise", True)


def collect_through_process_group(cfg: Config) -> list[str]:
    """Evaluators gather results through the process group instead of a folder on a
    shared disk (MMEngine's ``collect_device='gpu'``, which works over gloo too), unless
    the config sets ``collect_device`` itself. Returns the evaluator types changed."""
    changed = []
    for evaluator in evaluators(cfg):
        if "collect_device" not in evaluator:
            evaluator["collect_device"] = "gpu"
            changed.append(str(evaluator.get("type")))
    return changed


def use_project_coco_metric(cfg: Config, backend: str) -> None:
    """Every CocoMetric becomes the project's (``engine.coco_metric``: the same keys, plus each
    AP unrounded), evaluating with ``backend``'s COCOeval ('faster' or 'pycocotools')."""
    for evaluator in evaluators(cfg):
        if evaluator.get("type") in COCO_METRIC_TYPES:
            evaluator.update(type=PROJECT_COCO_METRIC, backend=backend)


def use_finetune_schedule(cfg: Config, lr_factor: float) -> None:
    """A warm start's fine-tuning schedule: the config's LR x ``lr_factor``, constant, no warm-up
    (``train.warm_start``)."""
    optimizer = cfg.optim_wrapper.optimizer
    optimizer.lr = float(optimizer.lr) * lr_factor
    cfg.param_scheduler = []  # MMEngine: no scheduler is a constant LR


def train_implicit_only(cfg: Config) -> None:
    """``--train implicit``: our optim-wrapper constructor freezes every other parameter."""
    paramwise = cfg.optim_wrapper.get("paramwise_cfg") or {}
    paramwise["implicit_only"] = True
    cfg.optim_wrapper["paramwise_cfg"] = paramwise

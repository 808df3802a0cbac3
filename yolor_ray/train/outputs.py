"""What a run leaves beside its checkpoints: results.json, curves.png, samples.png.

``results.json`` is made from two records (``yolor_ray.records``): the run's manifest
(``run.json``, written before training: config, model, classes, scale) and the run state
in its latest checkpoint (history, restarts, nodes). So a run that ended early -- a trial
a sweep's scheduler stopped -- gets its results without building anything again.
"""
from __future__ import annotations

import io
import json
import platform
import subprocess
from pathlib import Path

import mmcv
import mmdet
import mmengine
import numpy as np
import ray
import torch
from matplotlib.figure import Figure
from mmdet.apis import inference_detector
from mmdet.visualization import DetLocalVisualizer
from PIL import Image, ImageOps

import yolor_ray
from yolor_ray.layout import CURVES_PNG, RESULTS_FILE, RUN_CONFIG, RUN_STATE_FILE
from yolor_ray.metrics import COCO_PREFIXES, TRAIN_LOSS, per_class_ap
from yolor_ray.models import build_model_from_checkpoint
from yolor_ray.records import RunManifest, RunResults, RunState

SAMPLE_TILE = 320  # pixels, each image of samples.png


def versions() -> dict[str, str]:
    found = dict(python=platform.python_version(), torch=torch.__version__, mmcv=mmcv.__version__,
                 mmengine=mmengine.__version__, mmdet=mmdet.__version__, ray=ray.__version__,
                 yolor_ray=yolor_ray.__version__)
    commit = _git_commit()
    if commit:
        found["yolor_ray_commit"] = commit
    return found


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def results_of(manifest: RunManifest, state: RunState, name: str, location: str, checkpoint: str,
               wall_time_s: float, artifacts: list[str], status: str) -> RunResults:
    """results.json of a run: its manifest plus the run state of its latest checkpoint."""
    return RunResults(
        name=name, location=location, status=status, config=manifest.config, model=manifest.model,
        implicit=manifest.implicit, data_root=manifest.data_root, classes=list(manifest.classes),
        small=manifest.small, epochs=manifest.epochs, metrics=state.final_metrics, history=state.history,
        restarts=state.restarts, num_params=manifest.num_params,
        # As the workers observed them (rank, node id, ip), from the latest worker group.
        world_size=len(state.nodes) if state.nodes else manifest.num_workers, nodes=state.nodes,
        use_gpu=bool(manifest.use_gpu), wall_time_s=round(wall_time_s, 2), checkpoint=checkpoint,
        artifacts=artifacts, versions=versions(), warm_start=manifest.warm_start,
        before_training=state.before_training, per_class_ap=per_class_ap(state.final_metrics, list(manifest.classes)))


def write_results(storage, name: str, manifest: RunManifest, checkpoint_dir: str, wall_time_s: float,
                  extra_artifacts: dict[str, bytes] | None = None) -> RunResults:
    """Curves and results.json of run ``name``, from the run state in ``checkpoint_dir``.

    The status is 'completed' when that state reached the planned epochs (a manifest from
    before epochs were recorded: completed), else 'stopped': a sweep's trial that its
    scheduler ended early.
    """
    state = RunState.from_json(storage.read_text(name, checkpoint_dir, RUN_STATE_FILE))
    status = "completed" if manifest.epochs is None or state.epochs_run >= manifest.epochs else "stopped"
    artifacts = {CURVES_PNG: plot_curves(state.history), **(extra_artifacts or {})}
    for file_name, data in artifacts.items():
        storage.write_bytes(data, name, file_name)
    written = sorted({RUN_CONFIG, *artifacts})  # config.py: written before training
    record = results_of(manifest, state, name, storage.location(name), storage.location(name, checkpoint_dir),
                        wall_time_s, written, status)
    # Last, and whole or not at all: a run without results.json is not complete.
    storage.write_bytes(record.to_json().encode(), name, RESULTS_FILE)
    return record


def plot_curves(history: list[dict]) -> bytes:
    """Training loss and COCO mAP per epoch, as PNG bytes."""
    fig = Figure(figsize=(10, 4))
    ax_loss, ax_map = fig.subplots(1, 2)
    epochs = [h["epoch"] for h in history]
    ax_loss.plot(epochs, [h.get(TRAIN_LOSS, float("nan")) for h in history], marker="o")
    ax_loss.set(title="training loss", xlabel="epoch", ylabel="loss")
    for prefix in COCO_PREFIXES:
        points = [(h["epoch"], h[f"{prefix}_mAP"]) for h in history if f"{prefix}_mAP" in h]
        if points:
            ax_map.plot(*zip(*points), marker="o", label=prefix.split("/")[1])
    ax_map.set(title="COCO mAP (val)", xlabel="epoch", ylabel="mAP", ylim=(0, None))
    if ax_map.lines:
        ax_map.legend()
    for ax in (ax_loss, ax_map):
        ax.grid(alpha=0.3)
    return figure_png(fig)


def figure_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def render_samples(cfg, checkpoint_file: Path, count: int, score_thr: float = 0.15) -> bytes:
    """Predictions of the trained model on the first ``count`` validation images, drawn by
    mmdet's DetLocalVisualizer and tiled into one PNG."""
    model = build_model_from_checkpoint(cfg, checkpoint_file)
    dataset = cfg.val_dataloader.dataset
    coco = json.loads(Path(dataset.ann_file).read_text())
    classes = [c["name"] for c in sorted(coco["categories"], key=lambda c: c["id"])]
    paths = [Path(dataset.data_prefix["img"]) / img["file_name"] for img in coco["images"][:count]]
    predictions = inference_detector(model, [str(p) for p in paths])
    visualizer = DetLocalVisualizer(name=f"yolor-ray-samples-{id(model)}")
    visualizer.dataset_meta = dict(classes=classes)
    tiles = []
    for path, prediction in zip(paths, predictions):
        image = np.asarray(Image.open(path).convert("RGB"))
        visualizer.add_datasample(path.name, image, prediction, draw_gt=False, pred_score_thr=score_thr)
        # Scaled up or down to the tile, aspect kept: small images stay readable.
        tiles.append(ImageOps.contain(Image.fromarray(visualizer.get_image()), (SAMPLE_TILE, SAMPLE_TILE)))
    cols = min(len(tiles), 4)
    rows = -(-len(tiles) // cols)
    sheet = Image.new("RGB", (cols * SAMPLE_TILE, rows * SAMPLE_TILE), "white")
    for index, tile in enumerate(tiles):
        sheet.paste(tile, ((index % cols) * SAMPLE_TILE, (index // cols) * SAMPLE_TILE))
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    return buffer.getvalue()

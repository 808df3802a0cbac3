"""What a run leaves behind: results.json, a curves PNG, a sample-detections PNG, and the AP table."""
from __future__ import annotations

import io
import json
import platform
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from yolor_ray.train import PreparedRun

RESULTS_FILE = "results.json"
SCORE_METRIC = "coco/bbox_mAP"  # what ranks checkpoints and runs
# CocoMetric's keys, in the seed table's column order.
AP_KEYS = ("mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l")


def versions() -> dict[str, str]:
    import mmcv
    import mmdet
    import mmengine
    import ray
    import torch

    import yolor_ray

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


def build_record(run: PreparedRun, state: dict, world_size: int, wall_time_s: float, checkpoint: str,
                 artifacts: list[str], status: str = "completed") -> dict[str, Any]:
    """results.json: what ran, on what, how it did. No credentials: the storage is
    named by its URI only."""
    history = state["history"]
    final = history[-1] if history else {}
    model = run.cfg.model
    is_yolor = model.type == "YOLOR"
    return dict(
        name=run.name,
        location=run.location,
        status=status,  # 'completed', or 'stopped' early by a sweep's scheduler
        config=str(run.spec.config),
        model=model.detector if is_yolor else model.type,
        implicit=model.get("implicit", {}).to_dict() if is_yolor else None,  # None: a baseline
        data_root=str(run.spec.data_root) if run.spec.data_root else None,
        classes=list(run.classes),
        small=run.spec.small,
        epochs=run.cfg.train_cfg.max_epochs,  # planned; the history says how many ran
        metrics={k: v for k, v in final.items() if k not in ("epoch", "iter")},
        history=history,
        restarts=state["restarts"],
        num_params=run.num_params,
        # As the workers observed them (rank, node id, ip), from the latest worker group.
        world_size=len(state["nodes"]) if state.get("nodes") else world_size,
        nodes=state.get("nodes", []),
        use_gpu=run.spec.use_gpu,
        wall_time_s=round(wall_time_s, 2),  # of this driver's fit (since the last resume)
        checkpoint=checkpoint,
        artifacts=artifacts,
        versions=versions(),
    )


def metric_prefixes(metrics: dict) -> list[str]:
    """The CocoMetric families present, e.g. ['coco/bbox', 'coco/segm']."""
    return [p for p in ("coco/bbox", "coco/segm") if f"{p}_mAP" in metrics]


def format_ap_table(metrics: dict) -> str:
    """A Markdown table of the COCO APs of one run (in %)."""
    header = "| task | AP | AP50 | AP75 | APs | APm | APl |\n| :-- | --: | --: | --: | --: | --: | --: |"
    rows = []
    for prefix in metric_prefixes(metrics):
        # COCO reports -1 where the split has no object of that size.
        cells = [f"{100 * metrics[key]:.1f}" if metrics.get(key, -1) >= 0 else "-"
                 for key in (f"{prefix}_{k}" for k in AP_KEYS)]
        rows.append(f"| {prefix.split('/')[1]} | " + " | ".join(cells) + " |")
    return "\n".join([header, *rows]) if rows else "(no COCO metrics were reported)"


def plot_curves(history: list[dict]) -> bytes:
    """Training loss and COCO mAP per epoch, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_map) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h.get("train/loss", float("nan")) for h in history], marker="o")
    ax_loss.set(title="training loss", xlabel="epoch", ylabel="loss")
    for prefix in ("coco/bbox", "coco/segm"):
        points = [(h["epoch"], h[f"{prefix}_mAP"]) for h in history if f"{prefix}_mAP" in h]
        if points:
            ax_map.plot(*zip(*points), marker="o", label=prefix.split("/")[1])
    ax_map.set(title="COCO mAP (val)", xlabel="epoch", ylabel="mAP", ylim=(0, None))
    if ax_map.lines:
        ax_map.legend()
    for ax in (ax_loss, ax_map):
        ax.grid(alpha=0.3)
    return figure_png(fig)


def figure_png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def render_samples(cfg, checkpoint_file: Path, count: int, score_thr: float = 0.15) -> bytes:
    """Predictions of the trained model on the first ``count`` validation images, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mmdet.apis import inference_detector
    from PIL import Image

    from yolor_ray.checkpoint import build_model_from_checkpoint

    model = build_model_from_checkpoint(cfg, checkpoint_file)
    dataset = cfg.val_dataloader.dataset
    coco = json.loads(Path(dataset.ann_file).read_text())
    classes = [c["name"] for c in sorted(coco["categories"], key=lambda c: c["id"])]
    paths = [Path(dataset.data_prefix["img"]) / img["file_name"] for img in coco["images"][:count]]
    predictions = inference_detector(model, [str(p) for p in paths])
    cols = min(len(paths), 4)
    rows = -(-len(paths) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 4 * rows), squeeze=False)
    for ax, path, pred in zip(axes.flat, paths, predictions):
        ax.imshow(Image.open(path).convert("RGB"))
        inst = pred.pred_instances
        keep = inst.scores >= score_thr
        for box, label, score in zip(inst.bboxes[keep].tolist(), inst.labels[keep].tolist(),
                                     inst.scores[keep].tolist()):
            x0, y0, x1, y1 = box
            ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="lime", linewidth=1.5))
            ax.text(x0, y0 - 2, f"{classes[label]} {score:.2f}", color="black", fontsize=7,
                    bbox=dict(facecolor="lime", alpha=0.8, pad=1, linewidth=0))
        ax.set_title(path.name, fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(f"predictions with score >= {score_thr}")
    return figure_png(fig)

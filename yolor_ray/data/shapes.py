"""A seeded synthetic COCO dataset of coloured shapes (``yolor-ray make-shapes``).

The shapes set stands in for COCO wherever no data can be downloaded (tests, the demo,
a laptop, the benchmarks): boxes and polygon masks for detection and instance
segmentation, several objects of varied size per image, a few classes. The same seed
gives the same bytes. It is written in the layout :mod:`yolor_ray.data.coco` checks.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from yolor_ray import paths
from yolor_ray.data.coco import DatasetError, annotation_file
from yolor_ray.errors import UserError, require_int

CLASSES = ("circle", "square", "triangle", "star")


class OutputExistsError(UserError, FileExistsError):
    """A folder to write a dataset into that already holds something."""


@dataclass(frozen=True)
class ShapesSpec:
    """What to generate. Validated on construction."""

    num_train: int
    num_val: int
    seed: int = 0
    image_size: int = 256
    min_objects: int = 2
    max_objects: int = 6

    def __post_init__(self):
        for name in ("num_train", "num_val"):
            require_int(f"ShapesSpec({name})", getattr(self, name), 1, DatasetError)
        require_int("ShapesSpec(image_size)", self.image_size, 64, DatasetError, high=2048)
        if not 1 <= self.min_objects <= self.max_objects <= 12:
            raise DatasetError(
                "ShapesSpec needs 1 <= min_objects <= max_objects <= 12, "
                f"got min_objects={self.min_objects!r}, max_objects={self.max_objects!r}")


def make_shapes(out_dir: str | os.PathLike, spec: ShapesSpec, overwrite: bool = False) -> Path:
    """Write a shapes dataset to ``out_dir``; it appears whole or not at all."""
    out = paths.output_folder(out_dir, "make-shapes DIR").resolve()
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise OutputExistsError(f"{out} exists and is not empty; pass overwrite=True (--overwrite) to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        train_seq, val_seq = np.random.SeedSequence(spec.seed).spawn(2)
        for split, count, seq in (("train", spec.num_train, train_seq), ("val", spec.num_val, val_seq)):
            _write_split(staging, split, count, np.random.default_rng(seq), spec)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _write_split(root: Path, split: str, count: int, rng: np.random.Generator, spec: ShapesSpec) -> None:
    (root / split).mkdir(parents=True)
    images, annotations = [], []
    for image_id in range(count):
        image, objects = _draw_image(rng, spec)
        file_name = f"{image_id:06d}.png"
        image.save(root / split / file_name, format="PNG", compress_level=6)
        images.append(dict(id=image_id, file_name=file_name, width=spec.image_size, height=spec.image_size))
        for category_id, polygon in objects:
            xs, ys = polygon[:, 0], polygon[:, 1]
            x0, y0 = float(xs.min()), float(ys.min())
            annotations.append(dict(
                id=len(annotations) + 1,
                image_id=image_id,
                category_id=category_id,
                bbox=[round(x0, 2), round(y0, 2), round(float(xs.max()) - x0, 2), round(float(ys.max()) - y0, 2)],
                area=round(_polygon_area(polygon), 2),
                segmentation=[[round(float(v), 2) for v in polygon.reshape(-1)]],
                iscrowd=0,
            ))
    coco = dict(
        info=dict(description=f"yolor-ray shapes ({split})", version="1"),
        images=images,
        annotations=annotations,
        categories=[dict(id=i + 1, name=name, supercategory="shape") for i, name in enumerate(CLASSES)],
    )
    ann = annotation_file(root, split)
    ann.parent.mkdir(exist_ok=True)
    ann.write_text(json.dumps(coco, separators=(",", ":")))


def _draw_image(rng: np.random.Generator, spec: ShapesSpec):
    size = spec.image_size
    # A smooth two-colour gradient with noise: a background the model must learn to ignore.
    top, bottom = rng.integers(0, 256, size=(2, 3))
    ramp = np.linspace(0.0, 1.0, size)[:, None, None]
    background = (1 - ramp) * top + ramp * bottom + rng.normal(0, 8, size=(size, size, 3))
    image = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)

    objects, boxes = [], []
    wanted = int(rng.integers(spec.min_objects, spec.max_objects + 1))
    for _ in range(wanted * 20):  # rejection sampling for non-overlapping boxes
        if len(objects) == wanted:
            break
        category_id = int(rng.integers(1, len(CLASSES) + 1))
        radius = float(rng.uniform(0.05, 0.22)) * size
        cx, cy = rng.uniform(radius + 1, size - radius - 1, size=2)
        polygon = _shape_polygon(CLASSES[category_id - 1], cx, cy, radius, float(rng.uniform(0, 2 * math.pi)))
        box = (*polygon.min(axis=0) - 2, *polygon.max(axis=0) + 2)
        if any(_overlaps(box, other) for other in boxes):
            continue
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        draw.polygon([tuple(p) for p in polygon.tolist()], fill=colour)
        objects.append((category_id, polygon))
        boxes.append(box)
    return image.filter(ImageFilter.SMOOTH), objects


def _shape_polygon(name: str, cx: float, cy: float, radius: float, angle: float) -> np.ndarray:
    if name == "circle":
        t = np.linspace(0, 2 * math.pi, 32, endpoint=False)
        radii = np.full_like(t, radius)
    elif name == "square":
        t = angle + np.arange(4) * math.pi / 2
        radii = np.full_like(t, radius)
    elif name == "triangle":
        t = angle + np.arange(3) * 2 * math.pi / 3
        radii = np.full_like(t, radius)
    elif name == "star":
        t = angle + np.arange(10) * math.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, radius, radius * 0.45)
    else:
        raise ValueError(f"unknown shape {name!r}; valid: {CLASSES}")
    return np.stack([cx + radii * np.cos(t), cy + radii * np.sin(t)], axis=1)


def _overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _polygon_area(polygon: np.ndarray) -> float:
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))

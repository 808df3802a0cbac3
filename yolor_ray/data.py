"""A seeded synthetic COCO dataset of coloured shapes, and checks of COCO folders.

The shapes set stands in for COCO wherever no data can be downloaded (tests, the demo,
a laptop): boxes and polygon masks for detection and instance segmentation, several
objects of varied size per image, a few classes. The same seed gives the same bytes.

Layout (the COCO layout MMDetection's ``CocoDataset`` expects)::

    DIR/annotations/instances_train.json   DIR/train/000000.png ...
    DIR/annotations/instances_val.json     DIR/val/000000.png ...
"""
from __future__ import annotations

import collections
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from yolor_ray.errors import UserError

CLASSES = ("circle", "square", "triangle", "star")
SPLITS = ("train", "val")

log = logging.getLogger("yolor_ray")


class DatasetError(UserError, ValueError):
    """A dataset folder that cannot be trained or evaluated on."""


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
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise DatasetError(f"ShapesSpec({name}) must be an int >= 1, got {value!r}")
        if not isinstance(self.image_size, int) or not 64 <= self.image_size <= 2048:
            raise DatasetError(f"ShapesSpec(image_size) must be an int in [64, 2048], got {self.image_size!r}")
        if not 1 <= self.min_objects <= self.max_objects <= 12:
            raise DatasetError(
                "ShapesSpec needs 1 <= min_objects <= max_objects <= 12, "
                f"got min_objects={self.min_objects!r}, max_objects={self.max_objects!r}")


def annotation_file(root: str | os.PathLike, split: str) -> Path:
    return Path(root) / "annotations" / f"instances_{split}.json"


def make_shapes(out_dir: str | os.PathLike, spec: ShapesSpec, overwrite: bool = False) -> Path:
    """Write a shapes dataset to ``out_dir``; it appears whole or not at all."""
    out = Path(out_dir).resolve()
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


# Image files looked at up front: a sample spread over the split, not all 118k of COCO's
# train2017 (``check_all_images`` looks at every one).
IMAGE_SAMPLE = 256


@dataclass(frozen=True)
class SplitFingerprint:
    """What must be the same on every node that trains on a split: the annotation file's
    bytes and the number of files in its image folder."""

    ann_sha256: str
    num_image_files: int


@dataclass(frozen=True)
class CocoSplitInfo:
    ann_file: Path
    image_dir: Path
    num_images: int
    num_annotations: int
    classes: tuple[str, ...]
    fingerprint: SplitFingerprint


def image_sample(images: list, size: int | None = None) -> list:
    """``size`` (default :data:`IMAGE_SAMPLE`) entries spread evenly over ``images``, all
    of them when there are fewer."""
    step = max(1, math.ceil(len(images) / (size or IMAGE_SAMPLE)))
    return images[::step]


def count_files(folder: Path) -> int:
    """Files directly in ``folder`` (0 when it does not exist): one directory listing."""
    try:
        with os.scandir(folder) as entries:
            return sum(1 for entry in entries if entry.is_file())
    except (FileNotFoundError, NotADirectoryError):
        return 0


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _no_float(_text: str) -> float:
    return 0.0


def inspect_coco_split(root: str | os.PathLike, split: str, check_all_images: bool = False) -> CocoSplitInfo:
    """Check one split of a COCO folder before any training starts.

    Raises :class:`DatasetError` saying what is wrong: no folder, no or unreadable
    annotation file, no images, no categories, image files missing. Image files are
    looked for in a sample of :data:`IMAGE_SAMPLE` spread over the split, plus the
    count of files in its folder; ``check_all_images`` looks for every one.
    """
    root = Path(root)
    if root.is_file():
        raise DatasetError(f"dataset path {str(root)!r} is a file; --data takes a COCO-layout folder "
                           f"(annotations/instances_{{{','.join(SPLITS)}}}.json and {{{','.join(SPLITS)}}}/ images)")
    if not root.is_dir():
        raise DatasetError(f"dataset folder {str(root)!r} does not exist (make one with: yolor-ray make-shapes {root})")
    ann = annotation_file(root, split)
    if not ann.is_file():
        raise DatasetError(f"annotation file {str(ann)!r} not found; a dataset folder holds "
                           f"annotations/instances_{{{','.join(SPLITS)}}}.json and {{{','.join(SPLITS)}}}/ images")
    raw = ann.read_bytes()  # read once: hashed for the per-node check, then parsed
    ann_sha256 = hashlib.sha256(raw).hexdigest()
    try:
        # Every float (boxes, areas, polygons) becomes one shared 0.0: nothing here reads
        # them, and at COCO's size they would be most of the memory.
        coco = json.loads(raw, parse_float=_no_float)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(f"annotation file {str(ann)!r} is not valid JSON: {err}") from None
    del raw
    if not isinstance(coco, dict) or not all(isinstance(coco.get(k), list) for k in ("images", "categories")):
        raise DatasetError(f"annotation file {str(ann)!r} is not a COCO instances file "
                           "(needs lists 'images', 'annotations' and 'categories')")
    images = coco["images"]
    if not images:
        raise DatasetError(f"annotation file {str(ann)!r} lists zero images; nothing to train or evaluate on")
    if not coco["categories"]:
        raise DatasetError(f"annotation file {str(ann)!r} lists zero categories")
    image_dir = root / split
    num_files = count_files(image_dir)
    checked = images if check_all_images else image_sample(images)
    missing = [img.get("file_name") for img in checked if not (image_dir / str(img.get("file_name"))).is_file()]
    if missing:
        which = "of the" if check_all_images else "in a sample of those"
        raise DatasetError(f"{len(missing)} {which} {len(images)} images listed in {str(ann)!r} are missing under "
                           f"{str(image_dir)!r}, e.g. {missing[0]!r}")
    if num_files < len(images) and not check_all_images:
        log.warning("%s lists %d images but %s holds %d file(s); a sample of %d was found. Pass "
                    "--check-all-images to look for every one", ann, len(images), image_dir, num_files, len(checked))
    check_category_ids(coco, ann)
    # Headers of some of the images just found (reading every header is the loader's job).
    check_image_headers([image_dir / str(img.get("file_name")) for img in image_sample(checked, HEADER_SAMPLE)])
    categories = sorted(coco["categories"], key=lambda c: c["id"])
    return CocoSplitInfo(
        ann_file=ann.resolve(),
        image_dir=image_dir.resolve(),
        num_images=len(images),
        num_annotations=len(coco.get("annotations") or []),
        classes=tuple(c["name"] for c in categories),
        fingerprint=SplitFingerprint(ann_sha256, num_files),
    )


@dataclass(frozen=True)
class CocoFolder:
    """A checked COCO-layout folder: both splits, inspected once per run or sweep."""

    root: Path
    train: CocoSplitInfo
    val: CocoSplitInfo


def inspect_coco_folder(root: str | os.PathLike, check_all_images: bool = False) -> CocoFolder:
    folder = CocoFolder(Path(root).resolve(), *(inspect_coco_split(root, split, check_all_images) for split in SPLITS))
    check_splits_agree(folder.train, folder.val)
    return folder


def fingerprint_differences(ann_file: Path, image_dir: Path, expected: SplitFingerprint) -> list[str]:
    """How this machine's copy of a split differs from ``expected`` (empty: the same)."""
    if not ann_file.is_file():
        return [f"{str(ann_file)!r} does not exist"]
    problems = []
    if file_sha256(ann_file) != expected.ann_sha256:
        problems.append(f"{str(ann_file)!r} differs from the driver's (sha256)")
    num_files = count_files(image_dir)
    if num_files != expected.num_image_files:
        problems.append(f"{str(image_dir)!r} holds {num_files} file(s), the driver's {expected.num_image_files}")
    return problems


HEADER_SAMPLE = 64  # images whose headers are read up front, spread over the split


def check_category_ids(coco: dict, ann: Path) -> None:
    """Annotations whose category is not among ``categories`` would be dropped silently."""
    known = {c.get("id") for c in coco["categories"]}
    unknown = collections.Counter(a.get("category_id") for a in coco.get("annotations") or []
                                  if a.get("category_id") not in known)
    if unknown:
        listed = ", ".join(f"{cid!r} ({n}x)" for cid, n in sorted(unknown.items(), key=lambda kv: str(kv[0]))[:5])
        raise DatasetError(f"{sum(unknown.values())} annotations in {str(ann)!r} have a category_id that is not in "
                           f"its categories: {listed}; valid ids: {', '.join(map(str, sorted(known, key=str)))}")


def check_image_headers(paths) -> None:
    """Open each image and verify it (PIL reads the header; PNG's chunk checksums too):
    unreadable or truncated files fail here, before Ray starts."""
    bad = []
    for path in paths:
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception as err:  # PIL raises many kinds for broken files
            bad.append((path, f"{type(err).__name__}: {' '.join(str(err).split())}"))
    if bad:
        path, reason = bad[0]
        raise DatasetError(f"{len(bad)} of {len(paths)} images checked cannot be read, e.g. {str(path)!r} ({reason}); "
                           "fix or remove them from the annotations")


def check_splits_agree(train: CocoSplitInfo, val: CocoSplitInfo) -> None:
    """Validation is scored against the training classes: the two must be the same."""
    if train.classes != val.classes:
        raise DatasetError(f"the val categories {list(val.classes)!r} ({val.ann_file}) differ from the train "
                           f"categories {list(train.classes)!r} ({train.ann_file}); both splits must list the same "
                           "categories in the same id order")

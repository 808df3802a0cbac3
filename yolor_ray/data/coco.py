"""Checks of a COCO-layout dataset folder, made before a run or sweep spends cluster time.

``yolor-ray train --data DIR`` and sweeps inspect the folder once on the driver: the
annotation files parse and list images and categories, the image files are there and
readable, both splits agree on their classes. Each problem is a :class:`DatasetError`,
one line a user can act on. What is found (:class:`CocoFolder`) goes to the config and,
as a fingerprint, to each node, which compares its own copy (``yolor_ray.train.nodes``).
No torch here: the light commands import it.

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
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from yolor_ray import paths
from yolor_ray.errors import UserError

SPLITS = ("train", "val")

log = logging.getLogger("yolor_ray")


class DatasetError(UserError, ValueError):
    """A dataset folder that cannot be trained or evaluated on."""


def annotation_file(root: str | os.PathLike, split: str) -> Path:
    return Path(root) / "annotations" / f"instances_{split}.json"


# The layout, and what --data takes (said after a --data path that is missing or not a folder).
LAYOUT = f"annotations/instances_{{{','.join(SPLITS)}}}.json and {{{','.join(SPLITS)}}}/ images"
DATA_HINT = f"--data takes a COCO-layout folder ({LAYOUT}; make one with: yolor-ray make-shapes DIR)"


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
    annotation file, no images, no categories, repeated image or annotation ids, image
    files missing. Image files are looked for in a sample of :data:`IMAGE_SAMPLE` spread
    over the split, plus the count of files in its folder; ``check_all_images`` looks for
    every one.
    """
    root = paths.input_folder(root, "dataset folder", DatasetError, hint=DATA_HINT)
    ann = paths.input_file(annotation_file(root, split), "annotation file", DatasetError,
                           hint=f"a dataset folder holds {LAYOUT}")
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
    check_unique_ids(coco, ann)
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


def check_unique_ids(coco: dict, ann: Path) -> None:
    """pycocotools indexes images and annotations by id: a repeated id silently replaces
    an entry, so such a file would be scored wrongly. The first repeat is named."""
    for key, what in (("images", "image"), ("annotations", "annotation")):
        entries = coco.get(key) or []
        seen = set()
        for entry in entries:
            id_ = entry.get("id")
            # Floats were all parsed as 0.0 (_no_float) and cannot be told apart here;
            # lists and dicts are not ids at all.
            if isinstance(id_, (float, list, dict)):
                continue
            if id_ in seen:
                count = sum(1 for other in entries if other.get("id") == id_)
                times = "twice" if count == 2 else f"{count} times"
                raise DatasetError(f"annotation file {str(ann)!r}: {what} id {id_!r} appears {times} "
                                   "(ids must be unique: pycocotools would score such a file wrongly)")
            seen.add(id_)


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

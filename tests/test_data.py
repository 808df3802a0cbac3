import hashlib
import json

import pytest
from pycocotools.coco import COCO

from yolor_ray.data import CLASSES, DatasetError, ShapesSpec, annotation_file, inspect_coco_split, make_shapes


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    spec = ShapesSpec(num_train=6, num_val=3, seed=7, image_size=96)
    a = make_shapes(tmp_path / "a", spec)
    b = make_shapes(tmp_path / "b", spec)
    c = make_shapes(tmp_path / "c", ShapesSpec(num_train=6, num_val=3, seed=8, image_size=96))
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_valid_coco_with_boxes_and_masks(shapes_dir):
    coco = COCO(str(annotation_file(shapes_dir, "train")))
    assert len(coco.getImgIds()) == 16
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)
    per_image = [len(coco.getAnnIds(imgIds=i)) for i in coco.getImgIds()]
    assert min(per_image) >= 2 and max(per_image) <= 6
    areas = []
    for ann in coco.loadAnns(coco.getAnnIds()):
        x, y, w, h = ann["bbox"]
        assert 0 <= x and 0 <= y and x + w <= 128 and y + h <= 128 and w > 0 and h > 0
        mask = coco.annToMask(ann)
        assert mask.sum() > 0.5 * ann["area"]  # the polygon rasterises to about its area
        areas.append(ann["area"])
    assert max(areas) > 4 * min(areas)  # varied sizes
    assert len({a["category_id"] for a in coco.loadAnns(coco.getAnnIds())}) >= 3


def test_inspect_reports_bad_folders(tmp_path, shapes_dir):
    with pytest.raises(DatasetError, match="does not exist"):
        inspect_coco_split(tmp_path / "nope", "train")
    broken = tmp_path / "broken"
    (broken / "annotations").mkdir(parents=True)
    (broken / "annotations" / "instances_train.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        inspect_coco_split(broken, "train")
    (broken / "annotations" / "instances_train.json").write_text(json.dumps(
        dict(images=[], annotations=[], categories=[dict(id=1, name="a")])))
    with pytest.raises(DatasetError, match="zero images"):
        inspect_coco_split(broken, "train")
    info = inspect_coco_split(shapes_dir, "val")
    assert info.num_images == 8 and info.classes == CLASSES


def test_refuses_to_overwrite_and_bad_specs(tmp_path):
    out = tmp_path / "d"
    make_shapes(out, ShapesSpec(num_train=1, num_val=1, image_size=64))
    with pytest.raises(FileExistsError, match="not empty"):
        make_shapes(out, ShapesSpec(num_train=1, num_val=1, image_size=64))
    with pytest.raises(ValueError, match=r"ShapesSpec\(num_train\) must be an int >= 1, got 0"):
        ShapesSpec(num_train=0, num_val=1)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind

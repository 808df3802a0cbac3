import hashlib
import json
import re

import pytest
from pycocotools.coco import COCO

from yolor_ray.data.coco import DatasetError, annotation_file, inspect_coco_split
from yolor_ray.data.shapes import CLASSES, ShapesSpec, make_shapes


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
    with pytest.raises(DatasetError, match="not found"):
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


def _copy_with_annotations(shapes_dir, tmp_path, split, edit):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(shapes_dir, copy)
    ann = annotation_file(copy, split)
    ann.write_text(json.dumps(edit(json.loads(ann.read_text()))))
    return copy, ann


def test_a_repeated_image_id_is_an_error_naming_the_first_repeat(tmp_path, shapes_dir):
    def repeat(coco):
        ids = [0, 1, 2, 6, 4, 1, 6, 7]  # two repeats: 1 (position 5) comes before 6 (position 6)
        return dict(coco, images=[dict(img, id=i) for img, i in zip(coco["images"], ids, strict=True)])

    copy, ann = _copy_with_annotations(shapes_dir, tmp_path, "val", repeat)
    with pytest.raises(DatasetError, match=re.escape(
            f"annotation file {str(ann)!r}: image id 1 appears twice "
            "(ids must be unique: pycocotools would score such a file wrongly)") + "$"):
        inspect_coco_split(copy, "val")


def test_a_repeated_annotation_id_is_an_error(tmp_path, shapes_dir):
    def repeat(coco):
        for ann in coco["annotations"][4:7]:
            ann["id"] = 3
        return coco

    copy, ann = _copy_with_annotations(shapes_dir, tmp_path, "train", repeat)
    with pytest.raises(DatasetError, match=re.escape(
            f"annotation file {str(ann)!r}: annotation id 3 appears 4 times "
            "(ids must be unique: pycocotools would score such a file wrongly)") + "$"):
        inspect_coco_split(copy, "train")
    # Float ids all parse as 0.0 (the check does not keep floats): they are not taken for repeats.
    coco = json.loads(ann.read_text())
    coco["annotations"] = [dict(a, id=float(a["id"])) for a in coco["annotations"]]
    ann.write_text(json.dumps(coco))
    inspect_coco_split(copy, "train")


def test_up_front_image_check_samples_unless_asked_for_all(tmp_path, shapes_dir, monkeypatch, caplog):
    import shutil

    from yolor_ray.data import coco

    copy = tmp_path / "copy"
    shutil.copytree(shapes_dir, copy)
    monkeypatch.setattr(coco, "IMAGE_SAMPLE", 4)  # 16 train images: every 4th is looked for
    listed = [img["file_name"] for img in json.loads(annotation_file(copy, "train").read_text())["images"]]
    assert [img["file_name"] for img in coco.image_sample([{"file_name": n} for n in listed])] == listed[::4]
    (copy / "train" / listed[1]).unlink()  # not in the sample
    with caplog.at_level("WARNING", logger="yolor_ray"):
        info = inspect_coco_split(copy, "train")
    assert info.num_images == 16 and info.fingerprint.num_image_files == 15
    assert "lists 16 images but" in caplog.text and "--check-all-images" in caplog.text
    with pytest.raises(DatasetError, match=f"1 of the 16 images listed .* are missing .* e.g. '{listed[1]}'"):
        inspect_coco_split(copy, "train", check_all_images=True)
    (copy / "train" / listed[4]).unlink()  # in the sample
    with pytest.raises(DatasetError, match=f"1 in a sample of those 16 images .* e.g. '{listed[4]}'"):
        inspect_coco_split(copy, "train")


def test_a_nodes_copy_is_compared_by_annotation_hash_and_image_count(tmp_path, shapes_dir):
    import shutil

    from yolor_ray.data.coco import inspect_coco_folder
    from yolor_ray.train.nodes import DataCheck

    check = DataCheck.of(inspect_coco_folder(shapes_dir))
    assert check.differences() == []
    copy = tmp_path / "copy"
    shutil.copytree(shapes_dir, copy)
    moved = DataCheck(str(copy), check.splits)
    assert moved.differences() == []  # the same bytes at another path
    val_ann = annotation_file(copy, "val")
    val_ann.write_text(val_ann.read_text().replace('"circle"', '"disc"'))
    next((copy / "train").iterdir()).unlink()
    assert moved.differences() == [f"{str(copy / 'train')!r} holds 15 file(s), the driver's 16",
                                   f"{str(val_ann)!r} differs from the driver's (sha256)"]
    assert DataCheck(str(tmp_path / "none"), check.splits).differences() == [
        f"dataset folder {str(tmp_path / 'none')!r} does not exist"]


def test_a_sweep_parses_the_annotation_files_once(shapes_dir, tmp_path, monkeypatch):
    """Once in prepare_sweep; trials and the leaderboard reuse what it found."""
    from yolor_ray.data import coco
    from yolor_ray.storage import StorageSpec
    from yolor_ray.train.prepare import prepare_run
    from yolor_ray.train.spec import RunSettings
    from yolor_ray.tune.spec import SweepSpec
    from yolor_ray.tune.sweep import prepare_sweep
    from yolor_ray.tune.trial import trial_for

    from support.paths import REPO

    parsed = []
    inspect = coco.inspect_coco_split
    monkeypatch.setattr(coco, "inspect_coco_split", lambda *a, **k: parsed.append(a[1]) or inspect(*a, **k))
    train = RunSettings(data_root=shapes_dir, small=True, image_size=64,
                        storage=StorageSpec(str(tmp_path / "results")))
    plan = prepare_sweep(SweepSpec(config=REPO / "configs" / "baseline" / "atss_r50_fpn_1x_coco.py", train=train,
                                   space=dict(placements=[["fpn"], ["pred"]]), trials=2))
    assert parsed == ["train", "val"]
    run = prepare_run(trial_for(plan.trial_spec, dict(placements="pred"), plan.base_implicit, "t1"), plan.inputs)
    assert parsed == ["train", "val"] and run.data is plan.data
    assert not (tmp_path / "results").exists()  # nothing written


def test_make_shapes_command_writes_what_it_was_asked(tmp_path, capsys):
    from PIL import Image

    from yolor_ray.cli import main

    rc = main(["make-shapes", str(tmp_path / "shapes"), "--images", "6", "--val-images", "3", "--size", "80",
               "--seed", "5"])
    assert rc == 0 and "wrote 6 train + 3 val images (80px, seed 5)" in capsys.readouterr().out
    train, val = (inspect_coco_split(tmp_path / "shapes", split) for split in ("train", "val"))
    assert (train.num_images, val.num_images) == (6, 3) and train.classes == CLASSES
    assert {Image.open(p).size for p in (tmp_path / "shapes" / "val").iterdir()} == {(80, 80)}
    assert _digest(tmp_path / "shapes") == _digest(make_shapes(tmp_path / "same", ShapesSpec(6, 3, seed=5,
                                                                                            image_size=80)))


def _user_config(path, data_root, val_ann="annotations/instances_val.json"):
    """A user's config with its own dataset (MMDetection's way: data_root, metainfo, ann_file)."""
    from support.paths import YOLOR_ATSS

    path.write_text(f"""_base_ = {str(YOLOR_ATSS)!r}
data_root = {str(data_root) + '/'!r}
metainfo = dict(classes={CLASSES!r})
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo,
                                     ann_file='annotations/instances_train.json', data_prefix=dict(img='train/')))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo, ann_file={val_ann!r},
                                   data_prefix=dict(img='val/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + {val_ann!r})
test_evaluator = val_evaluator
model = dict(bbox_head=dict(num_classes={len(CLASSES)}))
""")
    return path


def test_a_config_with_its_own_dataset_trains_it_without_data(tmp_path, shapes_dir):
    """No --data: the config's dataset is what trains, its annotation files checked up front."""
    import copy

    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope

    from yolor_ray.storage import StorageSpec
    from yolor_ray.train.prepare import prepare_run
    from yolor_ray.train.spec import TrainSpec

    run = prepare_run(TrainSpec(config=_user_config(tmp_path / "mine.py", shapes_dir), small=True, image_size=64,
                                epochs=1, storage=StorageSpec(str(tmp_path / "results"))))
    assert run.data is None and run.classes == CLASSES
    init_default_scope("mmdet")
    for name, count in (("train_dataloader", 16), ("val_dataloader", 8)):  # shapes_dir's splits
        dataset = DATASETS.build(copy.deepcopy(run.cfg[name].dataset.to_dict()))
        assert len(dataset) == count and dataset.metainfo["classes"] == CLASSES

    with pytest.raises(DatasetError, match=r"val_dataloader's annotation file .*instances_nope.json' not found; "
                                           r"pass --data DIR"):
        prepare_run(TrainSpec(config=_user_config(tmp_path / "bad.py", shapes_dir, "annotations/instances_nope.json"),
                              small=True, image_size=64, storage=StorageSpec(str(tmp_path / "results"))))
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())

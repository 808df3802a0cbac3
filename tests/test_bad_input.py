"""Bad input: a clear error, exit status 2, and nothing written under the results folder."""
import json
import shutil

import pytest

from support.paths import ATSS, YOLOR_ATSS
from support.runs import yolor_ray


@pytest.fixture
def storage(tmp_path):
    return tmp_path / "results"


def _fails_cleanly(proc, storage, match):
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert match in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not storage.exists() or not any(storage.iterdir())


@pytest.mark.subprocess
def test_missing_config(storage, shapes_dir):
    proc = yolor_ray("train", "configs/nope.py", "--data", shapes_dir, "--storage", storage)
    _fails_cleanly(proc, storage, "config file 'configs/nope.py' not found")


@pytest.mark.subprocess
def test_unknown_config_key(storage, shapes_dir):
    proc = yolor_ray("train", ATSS, "--data", shapes_dir, "--storage", storage,
                     "--cfg-options", "model.bbox_head.num_clases=3")
    _fails_cleanly(proc, storage, "unknown config key 'model.bbox_head.num_clases'")


@pytest.mark.subprocess
def test_missing_dataset_folder(storage, tmp_path):
    proc = yolor_ray("train", ATSS, "--data", tmp_path / "nowhere", "--storage", storage)
    _fails_cleanly(proc, storage, "not found")


@pytest.mark.subprocess
def test_corrupt_annotations(storage, shapes_dir, tmp_path):
    data = tmp_path / "corrupt"
    shutil.copytree(shapes_dir, data)
    ann = data / "annotations" / "instances_train.json"
    ann.write_text(ann.read_text()[: 500])
    proc = yolor_ray("train", ATSS, "--data", data, "--storage", storage)
    _fails_cleanly(proc, storage, "is not valid JSON")


@pytest.mark.subprocess
def test_zero_images(storage, shapes_dir, tmp_path):
    data = tmp_path / "empty"
    shutil.copytree(shapes_dir, data)
    ann = data / "annotations" / "instances_train.json"
    coco = json.loads(ann.read_text())
    ann.write_text(json.dumps(dict(coco, images=[], annotations=[])))
    proc = yolor_ray("train", ATSS, "--data", data, "--storage", storage)
    _fails_cleanly(proc, storage, "lists zero images")


@pytest.mark.ray
@pytest.mark.subprocess
def test_more_workers_than_local_ray_holds(storage, shapes_dir):
    proc = yolor_ray("train", ATSS, "--data", shapes_dir, "--small", "--num-workers", 64, "--storage", storage,
                     timeout=180)
    _fails_cleanly(proc, storage, "the local Ray cluster can never hold this run: it needs 64 CPUs")


@pytest.mark.subprocess
def test_make_shapes_refuses_a_non_empty_folder(shapes_dir):
    before = sorted(p.name for p in shapes_dir.rglob("*"))
    proc = yolor_ray("make-shapes", shapes_dir, "--images", 2)
    assert proc.returncode == 2 and "is not empty; pass overwrite=True (--overwrite)" in proc.stderr
    assert sorted(p.name for p in shapes_dir.rglob("*")) == before


# --- issue 14: more bad input, each one line, exit 2, nothing written -------------------------------------------


def _copy_data(shapes_dir, tmp_path, name="data"):
    data = tmp_path / name
    shutil.copytree(shapes_dir, data)
    return data


def _edit_annotations(data, split, edit):
    ann = data / "annotations" / f"instances_{split}.json"
    ann.write_text(json.dumps(edit(json.loads(ann.read_text()))))


@pytest.mark.subprocess
def test_fuse_of_a_missing_file(tmp_path):
    proc = yolor_ray("fuse", tmp_path / "nothing.pth", tmp_path / "out")
    _fails_cleanly(proc, tmp_path / "out", "nothing.pth' not found")


@pytest.mark.subprocess
def test_fuse_of_a_file_that_is_not_a_checkpoint(tmp_path):
    (tmp_path / "notes.pth").write_text("hello\n")
    proc = yolor_ray("fuse", tmp_path / "notes.pth", tmp_path / "out")
    _fails_cleanly(proc, tmp_path / "out", "notes.pth' is not a PyTorch checkpoint")


@pytest.mark.subprocess
def test_fuse_of_a_pickle_with_a_foreign_object(tmp_path):
    import torch

    torch.save(dict(state_dict={}, meta=dict(when=__import__("datetime").date(2024, 1, 1))), tmp_path / "foreign.pth")
    proc = yolor_ray("fuse", tmp_path / "foreign.pth", tmp_path / "out")
    _fails_cleanly(proc, tmp_path / "out", "foreign.pth' holds datetime.date, which yolor-ray does not unpickle")


@pytest.mark.subprocess
def test_fuse_with_a_config_the_checkpoint_does_not_fit(tmp_path):
    """--config names the full-size YOLOR ATSS; the checkpoint is a --small one (ResNet-18)."""
    import torch

    from support.implicit import build, small_cfg

    torch.save(dict(state_dict=build(small_cfg("atss")).state_dict()), tmp_path / "small.pth")
    proc = yolor_ray("fuse", tmp_path / "small.pth", tmp_path / "out", "--config", YOLOR_ATSS)
    _fails_cleanly(proc, tmp_path / "out", "checkpoint does not fit ATSS: shapes differ for backbone.")


@pytest.mark.subprocess
def test_storage_folder_that_cannot_be_created(shapes_dir):
    proc = yolor_ray("train", ATSS, "--data", shapes_dir, "--small", "--image-size", 64,
                     "--storage", "/proc/yolor-results")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "storage folder '/proc/yolor-results' cannot be created or written" in proc.stderr


@pytest.mark.subprocess
def test_config_path_that_is_a_directory(storage, shapes_dir):
    proc = yolor_ray("train", ATSS.parent, "--data", shapes_dir, "--storage", storage)
    _fails_cleanly(proc, storage, "is a folder; expected a file")


@pytest.mark.subprocess
def test_data_path_that_is_a_file(storage, shapes_dir):
    proc = yolor_ray("train", ATSS, "--data", shapes_dir / "annotations" / "instances_train.json",
                     "--storage", storage)
    _fails_cleanly(proc, storage, "instances_train.json' is a file; --data takes a COCO-layout folder")


@pytest.mark.subprocess
def test_val_categories_differ_from_train(storage, shapes_dir, tmp_path):
    data = _copy_data(shapes_dir, tmp_path)
    _edit_annotations(data, "val", lambda coco: dict(coco, categories=[dict(c, name=c["name"].upper())
                                                                       for c in coco["categories"]]))
    proc = yolor_ray("train", ATSS, "--data", data, "--storage", storage)
    _fails_cleanly(proc, storage, "the val categories ['CIRCLE', 'SQUARE', 'TRIANGLE', 'STAR']")


@pytest.mark.subprocess
def test_annotations_with_unknown_category_ids(storage, shapes_dir, tmp_path):
    data = _copy_data(shapes_dir, tmp_path)

    def relabel(coco):
        for ann in coco["annotations"][:3]:
            ann["category_id"] = 9
        return coco

    _edit_annotations(data, "train", relabel)
    proc = yolor_ray("train", ATSS, "--data", data, "--storage", storage)
    _fails_cleanly(proc, storage, "3 annotations in")
    assert "have a category_id that is not in its categories: 9 (3x); valid ids: 1, 2, 3, 4" in proc.stderr


@pytest.mark.subprocess
def test_annotation_file_with_a_repeated_image_id(storage, shapes_dir, tmp_path):
    data = _copy_data(shapes_dir, tmp_path)
    _edit_annotations(data, "val", lambda coco: dict(coco, images=coco["images"] + coco["images"][2:3]))
    proc = yolor_ray("train", ATSS, "--data", data, "--storage", storage, "--dry-run")
    error = (f"yolor-ray: error: annotation file {str(data / 'annotations' / 'instances_val.json')!r}: image id 2 "
             "appears twice (ids must be unique: pycocotools would score such a file wrongly)")
    _fails_cleanly(proc, storage, error)
    assert [line for line in proc.stderr.splitlines() if "error" in line] == [error]  # one line


@pytest.mark.subprocess
def test_truncated_image(storage, shapes_dir, tmp_path):
    data = _copy_data(shapes_dir, tmp_path)
    image = data / "val" / "000003.png"
    image.write_bytes(image.read_bytes()[:300])
    proc = yolor_ray("train", ATSS, "--data", data, "--storage", storage)
    _fails_cleanly(proc, storage, "1 of 8 images checked cannot be read, e.g.")
    assert "000003.png" in proc.stderr


@pytest.mark.subprocess
def test_config_that_fails_with_an_empty_message(storage, shapes_dir, tmp_path):
    config = tmp_path / "broken.py"
    config.write_text(f"_base_ = {str(ATSS)!r}\nraise RuntimeError()\n")
    proc = yolor_ray("train", config, "--data", shapes_dir, "--storage", storage)
    _fails_cleanly(proc, storage, "RuntimeError with no message at line 2 ('raise RuntimeError()')")


def test_training_skips_an_unreadable_image_and_counts_it(shapes_dir, tmp_path):
    """Past the up-front sample, an unreadable image is skipped at load time (another is drawn)."""
    import numpy as np
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope

    from yolor_ray.config.edits import make_small, skip_unreadable_images, use_coco_folder
    from yolor_ray.config.load import load_config
    from yolor_ray.config.parts import innermost_dataset
    from yolor_ray.data.coco import inspect_coco_split
    from yolor_ray.engine.transforms import LoadImageOrSkip

    data = _copy_data(shapes_dir, tmp_path)
    cfg = load_config(ATSS)
    use_coco_folder(cfg, inspect_coco_split(data, "train"), inspect_coco_split(data, "val"))
    make_small(cfg, 64)
    skip_unreadable_images(cfg)
    dataset_cfg = innermost_dataset(cfg.train_dataloader)
    assert dataset_cfg.pipeline[0]["type"] == "LoadImageOrSkip"
    init_default_scope("mmdet")
    dataset = DATASETS.build(dataset_cfg)
    broken = dataset.get_data_info(0)["img_path"]
    with open(broken, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # a PNG header and nothing after it
    before = LoadImageOrSkip.skipped
    np.random.seed(0)  # BaseDataset redraws with np.random: seeded, so the redraw is not image 0 again
    item = dataset[0]
    assert LoadImageOrSkip.skipped == before + 1
    assert item["data_samples"].img_path != broken

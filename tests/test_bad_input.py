"""Bad input: a clear error, exit status 2, and nothing written under the results folder."""
import json
import shutil

import pytest

from test_train_ray import ATSS, yolor_ray


@pytest.fixture
def storage(tmp_path):
    return tmp_path / "results"


def _fails_cleanly(proc, storage, match):
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert match in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not storage.exists() or not any(storage.iterdir())


def test_missing_config(storage, shapes_dir):
    proc = yolor_ray("train", "configs/nope.py", "--data", shapes_dir, "--storage", storage)
    _fails_cleanly(proc, storage, "config file 'configs/nope.py' not found")


def test_unknown_config_key(storage, shapes_dir):
    proc = yolor_ray("train", ATSS, "--data", shapes_dir, "--storage", storage, "--cfg-options", "model.bbox_head.num_clases=3")
    _fails_cleanly(proc, storage, "unknown config key 'model.bbox_head.num_clases'")


def test_missing_dataset_folder(storage, tmp_path):
    proc = yolor_ray("train", ATSS, "--data", tmp_path / "nowhere", "--storage", storage)
    _fails_cleanly(proc, storage, "does not exist")


def test_corrupt_annotations(storage, shapes_dir, tmp_path):
    data = tmp_path / "corrupt"
    shutil.copytree(shapes_dir, data)
    ann = data / "annotations" / "instances_train.json"
    ann.write_text(ann.read_text()[: 500])
    proc = yolor_ray("train", ATSS, "--data", data, "--storage", storage)
    _fails_cleanly(proc, storage, "is not valid JSON")


def test_zero_images(storage, shapes_dir, tmp_path):
    data = tmp_path / "empty"
    shutil.copytree(shapes_dir, data)
    ann = data / "annotations" / "instances_train.json"
    coco = json.loads(ann.read_text())
    ann.write_text(json.dumps(dict(coco, images=[], annotations=[])))
    proc = yolor_ray("train", ATSS, "--data", data, "--storage", storage)
    _fails_cleanly(proc, storage, "lists zero images")


def test_more_workers_than_local_ray_holds(storage, shapes_dir):
    proc = yolor_ray("train", ATSS, "--data", shapes_dir, "--small", "--num-workers", 64, "--storage", storage,
                     timeout=180)
    _fails_cleanly(proc, storage, "the local Ray cluster can never hold this run: it needs 64 CPUs")


def test_make_shapes_refuses_a_non_empty_folder(shapes_dir):
    before = sorted(p.name for p in shapes_dir.rglob("*"))
    proc = yolor_ray("make-shapes", shapes_dir, "--images", 2)
    assert proc.returncode == 2 and "is not empty; pass overwrite=True (--overwrite)" in proc.stderr
    assert sorted(p.name for p in shapes_dir.rglob("*")) == before

"""The project's COCO metric (engine.coco_metric): mmdet's keys unchanged, each AP also unrounded,
faster-coco-eval's COCOeval giving pycocotools' 12 stats; the config edit and --coco-eval.
The real run's results.json holding the unrounded AP: tests/test_train_ray.py."""
from __future__ import annotations

import contextlib
import copy
import io
import json

import numpy as np
import pytest
from mmengine.config import Config

from yolor_ray.config.edits import use_project_coco_metric
from yolor_ray.config.parts import coco_tasks, evaluators
from yolor_ray.data.synthetic_coco import synthetic_detections, synthetic_gt
from yolor_ray.metrics import PROJECT_COCO_METRIC, unrounded, unrounded_key

from support.paths import ATSS

EXACT, SAME = 1e-9, 1e-6
ALL_ITEMS = ("mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l",
             "AR@100", "AR@300", "AR@1000", "AR_s@1000", "AR_m@1000", "AR_l@1000")


def _coco(dataset: dict):
    from mmdet.datasets.api_wrappers import COCO

    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _evaluate(gt, detections: list[dict], iou_type: str, backend: str):
    """COCOeval of one backend on ``detections``, with CocoMetric's parameters, run."""
    from yolor_ray.engine.coco_metric import coco_eval_class

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints as it goes
        coco_eval = coco_eval_class(backend)(gt, gt.loadRes(copy.deepcopy(detections)), iou_type)
        coco_eval.params.maxDets = [100, 300, 1000]  # CocoMetric's proposal_nums
        coco_eval.evaluate(), coco_eval.accumulate(), coco_eval.summarize()
    return coco_eval


def _metric_results(gt: dict, per_image: int = 20) -> list:
    """CocoMetric's processed results for ``gt``'s images: synthetic boxes (xyxy) and RLE masks."""
    bbox_dets, segm_dets = synthetic_detections(gt, per_image)
    labels = {c["id"]: index for index, c in enumerate(sorted(gt["categories"], key=lambda c: c["id"]))}
    results = []
    for img in gt["images"]:
        mine = [k for k, det in enumerate(bbox_dets) if det["image_id"] == img["id"]]
        boxes = np.array([bbox_dets[k]["bbox"] for k in mine]).reshape(-1, 4)
        xyxy = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], 1)
        results.append(({}, dict(img_id=img["id"], bboxes=xyxy,
                                 scores=np.array([bbox_dets[k]["score"] for k in mine]),
                                 labels=np.array([labels[bbox_dets[k]["category_id"]] for k in mine]),
                                 masks=[dict(segm_dets[k]["segmentation"]) for k in mine])))
    return results


def _compute(ann_file, results, backend: str, tmp_path=None, **kwargs) -> dict:
    from yolor_ray.engine.coco_metric import UnroundedCocoMetric

    gt = json.loads(ann_file.read_text())
    metric = UnroundedCocoMetric(ann_file=str(ann_file), metric=["bbox", "segm"], backend=backend,
                             outfile_prefix=str(tmp_path / "dets") if tmp_path else None, **kwargs)
    metric.dataset_meta = dict(classes=[c["name"] for c in sorted(gt["categories"], key=lambda c: c["id"])])
    with contextlib.redirect_stdout(io.StringIO()):
        return metric.compute_metrics([(g, dict(p, masks=[dict(m) for m in p["masks"]])) for g, p in results])


@pytest.fixture(scope="module")
def shapes_val(shapes_dir):
    ann_file = shapes_dir / "annotations" / "instances_val.json"
    return ann_file, _metric_results(json.loads(ann_file.read_text()))


def test_unrounded_ap_is_pycocotools_stat_and_the_rounded_key_stays(shapes_val, tmp_path):
    from pycocotools.cocoeval import COCOeval

    ann_file, results = shapes_val
    metrics = _compute(ann_file, results, "pycocotools", tmp_path)
    # pycocotools itself, on the detections the metric dumped, with CocoMetric's parameters
    gt = _coco(json.loads(ann_file.read_text()))
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval = COCOeval(gt, gt.loadRes(str(tmp_path / "dets.bbox.json")), "bbox")
        coco_eval.params.maxDets = [100, 300, 1000]
        coco_eval.evaluate(), coco_eval.accumulate(), coco_eval.summarize()
    assert abs(metrics["bbox_unrounded_mAP"] - coco_eval.stats[0]) <= EXACT
    assert metrics["bbox_mAP"] == round(coco_eval.stats[0], 3)  # mmdet's own key, as before
    assert metrics["bbox_unrounded_mAP"] != metrics["bbox_mAP"]
    assert {unrounded_key(f"coco/{task}_{item}") for task in ("bbox", "segm") for item in ALL_ITEMS[:6]} == {
        f"coco/{key}" for key in metrics if "unrounded" in key}
    # what the statistics read: the unrounded value where reported, else the rounded one
    assert unrounded({f"coco/{k}": v for k, v in metrics.items()}, "coco/bbox_mAP") == metrics["bbox_unrounded_mAP"]
    assert unrounded({"coco/bbox_mAP": 0.123}, "coco/bbox_mAP") == 0.123


def test_faster_backend_gives_pycocotools_stats_on_shapes(shapes_val):
    from yolor_ray.engine.coco_metric import coco_eval_class

    assert coco_eval_class("faster").__module__.startswith("faster_coco_eval")  # installed: setup.py
    ann_file, results = shapes_val
    stats = {backend: _compute(ann_file, results, backend, metric_items=list(ALL_ITEMS))
             for backend in ("pycocotools", "faster")}
    for task in ("bbox", "segm"):
        for item in ALL_ITEMS:
            key = f"{task}_unrounded_{item}"
            assert abs(stats["faster"][key] - stats["pycocotools"][key]) <= SAME, key
            assert stats["faster"][f"{task}_{item}"] == stats["pycocotools"][f"{task}_{item}"]


def test_faster_backend_gives_pycocotools_stats_on_a_coco_like_set():
    """80 classes, COCO's box sizes, 1% crowd, 100 detections per image, float32 scores (ties);
    COCO val's own size (5,000 images) in bench/coco_eval.py, which records the same check."""
    gt_dataset = synthetic_gt(60, seed=3)
    gt = _coco(gt_dataset)
    bbox_dets, segm_dets = synthetic_detections(gt_dataset, 100, seed=4)
    for task, dets in (("bbox", bbox_dets), ("segm", segm_dets)):
        slow, fast = (np.asarray(_evaluate(gt, dets, task, backend).stats[:12])
                      for backend in ("pycocotools", "faster"))
        assert np.abs(slow - fast).max() <= SAME, (task, slow, fast)
        assert slow[0] > 0.05  # a set with something to find


def test_pycocotools_when_faster_coco_eval_is_missing(monkeypatch):
    from mmdet.datasets.api_wrappers import COCOeval

    from yolor_ray.config.load import ConfigError
    from yolor_ray.engine import coco_metric

    monkeypatch.setattr(coco_metric, "faster_coco_eval_installed", lambda: False)
    assert coco_metric.coco_eval_class("faster") is COCOeval
    assert coco_metric.UnroundedCocoMetric(backend="faster").evaluator_class is COCOeval
    with pytest.raises(ConfigError, match="one of faster, pycocotools, got 'fast'"):
        coco_metric.UnroundedCocoMetric(backend="fast")


def test_registered_and_given_to_every_coco_metric_of_a_run(shapes_dir):
    from mmdet.registry import METRICS

    import yolor_ray.registrations  # noqa: F401
    from yolor_ray.train.run_config import RunInputs, run_config
    from yolor_ray.train.spec import TrainSpec

    cfg = Config(dict(val_evaluator=[dict(type="CocoMetric", metric="bbox", classwise=False),
                                     dict(type="VOCMetric")], test_evaluator=dict(type="CocoMetric")))
    use_project_coco_metric(cfg, "pycocotools")
    assert cfg.val_evaluator[0] == dict(type=PROJECT_COCO_METRIC, metric="bbox", classwise=False, backend="pycocotools")
    assert cfg.val_evaluator[1] == dict(type="VOCMetric")
    assert cfg.test_evaluator.type == PROJECT_COCO_METRIC
    assert coco_tasks(cfg) == ["bbox"]  # the config edits still find it
    cfg = run_config(TrainSpec(config=ATSS, data_root=shapes_dir, small=True, image_size=64), RunInputs())
    for evaluator in evaluators(cfg):
        assert (evaluator.type, evaluator.backend, evaluator.classwise) == (PROJECT_COCO_METRIC, "faster", True)
        metric = METRICS.build(dict(evaluator, ann_file=str(shapes_dir / "annotations" / "instances_val.json")))
        assert metric.default_prefix == "coco" and metric.evaluator_class.__module__.startswith("faster_coco_eval")


def test_a_bad_coco_eval_is_one_line(shapes_dir, tmp_path, capsys):
    from yolor_ray.cli import main
    from yolor_ray.cli.train import spec_from_argv
    from yolor_ray.train.spec import OptionError

    assert spec_from_argv([str(ATSS)]).coco_eval == "faster"
    assert spec_from_argv([str(ATSS), "--coco-eval", "pycocotools"]).coco_eval == "pycocotools"
    with pytest.raises(OptionError, match="^--coco-eval must be one of faster, pycocotools, got 'fast'$"):
        spec_from_argv([str(ATSS), "--coco-eval", "fast"])
    storage = tmp_path / "results"
    assert main(["train", str(ATSS), "--data", str(shapes_dir), "--storage", str(storage), "--coco-eval", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "yolor-ray: error: --coco-eval must be one of faster, pycocotools, got 'x'", err
    assert not storage.exists()

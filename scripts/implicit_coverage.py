"""Coverage of the implicit placements on every detector family of mmdet's own configs.

For each family folder of mmdet 3.3's ``configs/`` (one representative config; the
folders that are not detector families are listed in :data:`EXCLUDED` with the reason)
it builds the YOLOR default variant (``fpn`` add + ``pred`` multiply) of the config's
model on CPU, lists the placements that exist, counts the parameters added, takes one
train step on a synthetic batch (every implicit parameter must get a non-zero
gradient), then fuses a copy and compares it with the unfused model on dense outputs:
every head's forward outputs and the output of every module an implicit acted on, with
the RPN's proposals held fixed (end-to-end two-stage outputs differ through proposal
order even where fusion is exact). Nothing is skipped silently: a family that does not
build, train or fuse is listed with the reason.

    make coverage                                   # all families, then the docs table
    python -m scripts.implicit_coverage --families gfl,tood --no-docs

Results go to ``work_dirs/implicit_coverage.json`` (``--resume`` skips families already
there) and the table replaces the one between the coverage markers of docs/implicit.md.
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import signal
import sys
import time
import warnings
from pathlib import Path

import torch
from mmengine.logging import MMLogger

# the checks tests/test_families.py runs on small models (the repository root is on the path: `python -m`)
from tests.support.implicit_checks import build_detector, compare_fused, mmdet_configs, model_cfg_of, train_step
from yolor_ray.implicit import (
    ImplicitSpec,
    PlacementSpec,
    attach_implicit,
    available_placements,
    count_implicit_params,
    resolution_of,
    resolve_placement,
)

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "implicit.md"
RESULTS = REPO / "work_dirs" / "implicit_coverage.json"
MARK_START, MARK_END = "<!-- coverage:start -->", "<!-- coverage:end -->"
TOLERANCE = 1e-4        # max |fused - unfused|, relative to max(1, max |unfused|) of each tensor
SIZES = (128, 224, 320)  # synthetic image sizes: the next when one is too small for a model (or a level gets no loss)
FAMILY_TIMEOUT_S = 600

EXCLUDED = {
    "_base_": "config fragments (datasets, schedules, base models) inherited by the families",
    "common": "training recipes (LSJ / SSJ / multi-scale schedules) shared by other folders",
    "misc": "Detectron2 wrappers (`Detectron2Wrapper`): need detectron2, not installed",
    "legacy_1.x": "mmdet 1.x coordinate-convention copies of faster_rcnn / mask_rcnn / retinanet / ssd",
    "strong_baselines": "training recipe (LSJ, SyncBN) on Mask R-CNN, covered by mask_rcnn",
    **{name: "dataset-only folder: families covered elsewhere, trained on another dataset"
       for name in ("cityscapes", "deepfashion", "lvis", "objects365", "openimages", "pascal_voc", "wider_face",
                    "v3det", "dsdl")},
    **{name: "tracking / ReID (video, `mmdet.models.trackers`): not a detector"
       for name in ("bytetrack", "deepsort", "masktrack_rcnn", "mask2former_vis", "ocsort", "qdtrack", "reid",
                    "sort", "strongsort")},
    "soft_teacher": "semi-supervised wrapper (teacher / student of a Faster R-CNN, covered by faster_rcnn)",
    **{name: "text-grounded detector: needs a language model (BERT) download"
       for name in ("glip", "grounding_dino", "mm_grounding_dino")},
}
# Where the name heuristic would not pick the smallest plain config of a folder.
REPRESENTATIVE = {
    "yolox": "yolox_tiny_8xb8-300e_coco.py",
    "rtmdet": "rtmdet_tiny_8xb32-300e_coco.py",
    "dino": "dino-4scale_r50_8xb2-12e_coco.py",
    "yolo": "yolov3_mobilenetv2_8xb24-320-300e_coco.py",
    "dcn": "faster-rcnn_r50-dconv-c3-c5_fpn_1x_coco.py",  # deformable convs; its dpool one needs a GPU-only op
    "dcnv2": "faster-rcnn_r50-mdconv-c3-c5_fpn_1x_coco.py",
    "cascade_rpn": "cascade-rpn_faster-rcnn_r50-caffe_fpn_1x_coco.py",  # mmdet 3.3 cannot build its RPN-only one
}


def _score(name: str) -> tuple:
    penalties = ("ms", "crop", "lsj", "amp", "x101", "r101", "2x", "3x", "caffe", "mstrain", "dcn", "gn", "syncbn",
                 "lvis", "voc", "cityscapes", "panoptic", "instance", "giou", "x-101", "16xb", "r152")
    score = sum(1 for p in penalties if p in name) - 2 * ("r50" in name) - ("1x" in name)
    return score, len(name), name


def representative(folder: Path) -> Path | None:
    if folder.name in REPRESENTATIVE:
        return folder / REPRESENTATIVE[folder.name]
    configs = sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))
    return min(configs, key=lambda p: _score(p.name)) if configs else None


def families() -> list[str]:
    return sorted(p.name for p in mmdet_configs().iterdir() if p.is_dir() and p.name != "__pycache__")


# ---------------------------------------------------------------- one family


class FamilyTimeout(BaseException):
    """Not an Exception: the per-stage handlers must not swallow it."""


def _alarm(signum, frame):
    raise FamilyTimeout(f"over {FAMILY_TIMEOUT_S} s")


def _short(err: BaseException) -> str:
    text = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
    text = re.sub(r"/\S*/site-packages/", "", text)
    return text[:220]


def check_family(name: str) -> dict:
    config = representative(mmdet_configs() / name)
    row = dict(family=name, config=config.name if config else None)
    if config is None:
        return dict(row, builds=False, note="no config in the folder")
    start = time.time()
    try:
        base_cfg = model_cfg_of(config)
        row["detector"] = base_cfg["type"]
        baseline = build_detector(base_cfg, init_weights=False)
    except Exception as err:  # noqa: BLE001
        return dict(row, builds=False, note=f"the model does not build on CPU: {_short(err)}")
    row["builds"] = True
    row["baseline_params"] = sum(p.numel() for p in baseline.parameters())
    resolution = resolution_of(baseline)
    row["resolved_by"] = resolution.method
    if resolution.error:
        row["trace_note"] = _short(RuntimeError(resolution.error))
    row["placements"] = available_placements(baseline)
    row["sites"] = {p: [s.path for s in resolve_placement(baseline, PlacementSpec(name=p))]
                    for p in row["placements"]}
    default = [p for p in ("fpn", "pred") if p in row["placements"]]
    row["variant"] = default
    if not default:
        return dict(row, note="neither fpn nor pred exists on this detector")
    # what type='YOLOR' does after building (build_yolor), on the model already built
    model = baseline
    try:
        attach_implicit(model, ImplicitSpec.from_config(dict(placements=default)))
    except Exception as err:  # noqa: BLE001
        return dict(row, yolor_builds=False, note=f"the default variant does not attach: {_short(err)}")
    row["yolor_builds"] = True
    try:
        model.init_weights()  # the detector's own init (pretrained weights dropped), not torch's default
    except Exception as err:  # noqa: BLE001
        row["init_note"] = f"init_weights failed, torch's default init kept: {_short(err)}"
    row["added_params"] = count_implicit_params(model)
    for size in SIZES:  # the larger size when the smaller fails or leaves levels without loss
        try:
            try:
                row["train"] = train_step(copy.deepcopy(model), size)
            except Exception:  # noqa: BLE001 - detection-only heads that choke on masks (RTMDet)
                row["train"] = train_step(copy.deepcopy(model), size, masks=False)
            row["train_size"] = size
            row.pop("train_error", None)
            if not row["train"]["zero_grad"]:
                break
        except Exception as err:  # noqa: BLE001
            row["train_error"] = _short(err)
    row["trains"] = "train" in row and not row["train"]["zero_grad"]
    if "train" in row:
        row.pop("train_error", None)
    for size in SIZES:
        try:
            row["fuse"] = compare_fused(model, size)
            row["fuse_size"] = size
            row.pop("fuse_error", None)
            break
        except Exception as err:  # noqa: BLE001
            row["fuse_error"] = _short(err)
    row["fuses"] = "fuse" in row and row["fuse"]["max_diff"] <= TOLERANCE
    row["seconds"] = round(time.time() - start, 1)
    return row


# ---------------------------------------------------------------- the table


def _yes(flag) -> str:
    return "yes" if flag else "**no**"


def _cell(text: str) -> str:
    return " ".join(str(text).replace("|", "/").split())


def table(rows: list[dict]) -> str:
    listed = [r for r in rows if not r.get("excluded")]
    built = [r for r in listed if r.get("builds")]
    trained = [r for r in built if r.get("trains")]
    fused = [r for r in built if r.get("fuses")]
    lines = [f"{len(listed)} families listed: {len(built)} build on CPU, the default variant trains one step "
             f"(every implicit parameter with a non-zero gradient) on {len(trained)} and fuses with equal dense "
             f"outputs on {len(fused)}; {len(rows) - len(listed)} folders excluded (below).", "",
             "| family | config | detector | placements (sites) | default variant | added params | builds | trains "
             "| fuses: folded / kept, max diff | notes |",
             "| --- | --- | --- | --- | --- | ---: | --- | --- | --- | --- |"]
    for r in listed:
        if not r.get("builds"):
            lines.append(f"| {r['family']} | {r.get('config') or '-'} | {r.get('detector', '-')} | - | - | - | "
                         f"**no** | - | - | {_cell(r.get('note', ''))} |")
            continue
        sites = ", ".join(f"{p} ({len(r['sites'][p])})" for p in r["placements"])
        fuse = r.get("fuse")
        fuse_text = (f"{_yes(r['fuses'])}: {fuse['folded']} / {fuse['kept']}, {fuse['max_diff']:.1e}" if fuse
                     else f"**no**: {r.get('fuse_error', '-')}")
        notes = []
        if r.get("resolved_by") != "loss":
            notes.append(f"resolved by {r.get('resolved_by')}" + (f" ({r['trace_note']})" if r.get("trace_note")
                                                                   else ""))
        if fuse and fuse["kept_reasons"]:
            notes.append("kept: " + "; ".join(fuse["kept_reasons"]))
        if r.get("train_error"):
            notes.append(f"train step: {r['train_error']}")
        elif r.get("train") and r["train"]["zero_grad"]:
            notes.append(f"no gradient (no loss reaches them at {r['train_size']} px): "
                         + ", ".join(n.rpartition(".implicit_")[0] for n in r["train"]["zero_grad"]))
        for key in ("init_note", "note"):
            if r.get(key):
                notes.append(r[key])
        trains = (f"{_yes(r['trains'])} ({r['train']['implicit_params'] - len(r['train']['zero_grad'])}/"
                  f"{r['train']['implicit_params']})" if r.get("train") else "**no**")
        lines.append(f"| {r['family']} | {r['config']} | {r.get('detector', '-')} | {sites} | "
                     f"{' + '.join(r.get('variant') or []) or '-'} | {r.get('added_params', 0):,} | yes | {trains} | "
                     f"{_cell(fuse_text)} | {_cell(' '.join(notes))} |")
    lines += ["", "| excluded folder | why |", "| --- | --- |"]
    lines += [f"| {r['family']} | {r['excluded']} |" for r in rows if r.get("excluded")]
    return "\n".join(lines)


def write_docs(rows: list[dict]) -> None:
    text = DOCS.read_text()
    if MARK_START not in text or MARK_END not in text:
        raise SystemExit(f"{DOCS} has no {MARK_START} ... {MARK_END} markers to replace")
    head, rest = text.split(MARK_START, 1)
    _, tail = rest.split(MARK_END, 1)
    DOCS.write_text(f"{head}{MARK_START}\n{table(rows)}\n{MARK_END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", help="comma-separated folder names (default: every folder)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--resume", action="store_true", help="keep the families already in --results")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite the table in docs/implicit.md")
    parser.add_argument("--docs-only", action="store_true", help="rewrite the docs table from --results only")
    parser.add_argument("--shard", default="0/1", help="I/N: every N-th family from the I-th (parallel runs)")
    parser.add_argument("--merge", type=Path, nargs="*", default=[], help="results files of shards to merge in")
    args = parser.parse_args(argv)


    MMLogger.get_instance("implicit_coverage", log_level="ERROR")

    warnings.filterwarnings("ignore")
    torch.set_num_threads(2)
    done = {}
    if (args.resume or args.docs_only) and args.results.is_file():
        done = {r["family"]: r for r in json.loads(args.results.read_text())}
    for extra in args.merge:
        done.update({r["family"]: r for r in json.loads(extra.read_text())})
    names = args.families.split(",") if args.families else families()
    index, count = (int(v) for v in args.shard.split("/"))
    names = names[index::count]
    if not args.docs_only:
        signal.signal(signal.SIGALRM, _alarm)
        for name in names:
            if name in done and args.resume:
                continue
            if name in EXCLUDED:
                done[name] = dict(family=name, excluded=EXCLUDED[name])
                continue
            signal.alarm(FAMILY_TIMEOUT_S)
            try:
                row = check_family(name)
            except FamilyTimeout:
                row = dict(family=name, builds=False, note=f"the check took over {FAMILY_TIMEOUT_S} s")
            except Exception as err:  # noqa: BLE001 - a family's failure is a row, not the end of the run
                row = dict(family=name, builds=False, note=f"the check failed: {_short(err)}")
            finally:
                signal.alarm(0)
            done[name] = row
            print(json.dumps({k: row.get(k) for k in ("family", "builds", "trains", "fuses", "seconds", "note")}),
                  flush=True)
            args.results.parent.mkdir(parents=True, exist_ok=True)
            args.results.write_text(json.dumps(sorted(done.values(), key=lambda r: r["family"]), indent=1))
    rows = sorted(done.values(), key=lambda r: r["family"])
    if not args.no_docs:
        write_docs(rows)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

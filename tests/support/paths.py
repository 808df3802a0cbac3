"""The repo and the configs the tests train."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
BASELINES = sorted((REPO / "configs" / "baseline").glob("*.py"))
YOLOR_CONFIGS = sorted((REPO / "configs" / "yolor").glob("*.py"))
ATSS = REPO / "configs" / "baseline" / "atss_r50_fpn_1x_coco.py"
YOLOR_ATSS = REPO / "configs" / "yolor" / "yolor_atss_r50_fpn_1x_coco.py"

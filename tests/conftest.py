"""Shared fixtures: a small shapes dataset made once per session, the repo paths."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BASELINES = sorted((REPO / "configs" / "baseline").glob("*.py"))

# Tests run on CPU with few cores: keep torch from oversubscribing them.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory) -> Path:
    from yolor_ray.data import ShapesSpec, make_shapes

    return make_shapes(tmp_path_factory.mktemp("data") / "shapes", ShapesSpec(num_train=16, num_val=8, seed=1,
                                                                              image_size=128))

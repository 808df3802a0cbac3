#!/usr/bin/env bash
# Create .venv in the repo root with the pinned yolor-ray stack (versions below and in setup.py).
#
# Idempotent: a second run checks what is there and returns in seconds. mmcv 2.1.0 has
# no wheel for torch 2.14, so it is built once from its PyPI sdist and the wheel is
# cached under $YOLOR_RAY_CACHE (default ~/.cache/yolor-ray) keyed by the versions.
#
#   scripts/setup.sh            # CPU ops (this machine, CI)
#   FORCE_CUDA=1 scripts/setup.sh   # CUDA ops, on a GPU node with nvcc
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3.11}"
CACHE="${YOLOR_RAY_CACHE:-$HOME/.cache/yolor-ray}"
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0
# torch 2.14 needs >=77.0.3; mmcv/mmengine import pkg_resources, removed in 82.
SETUPTOOLS_SPEC='setuptools>=77.0.3,<82'

step() { printf '\n[setup] %s\n' "$*"; }
fail() { printf '\n[setup] FAILED: %s\n' "$*" >&2; exit 1; }
trap 'fail "command on line $LINENO exited with $? (see the output above)"' ERR

command -v "$PYTHON" >/dev/null || fail "$PYTHON not found; yolor-ray needs CPython 3.11 (set PYTHON=...)"

if [ ! -x "$VENV/bin/python" ]; then
  step "creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

installed() { "$PY" - "$@" <<'PYEOF' 2>/dev/null
import sys
from importlib.metadata import version
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    if version(name) != want:
        sys.exit(1)
PYEOF
}

step "pip and $SETUPTOOLS_SPEC, wheel, ninja"
"${PIP[@]}" install -q --upgrade "pip>=24" "$SETUPTOOLS_SPEC" wheel ninja

if installed "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"; then
  step "torch $TORCH_VERSION / torchvision $TORCHVISION_VERSION already installed"
else
  step "installing torch $TORCH_VERSION / torchvision $TORCHVISION_VERSION (large; taken from local disk when present)"
  "${PIP[@]}" install "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
fi

if installed "mmcv==$MMCV_VERSION"; then
  step "mmcv $MMCV_VERSION already installed"
else
  flavour=cpu; [ "${FORCE_CUDA:-0}" = 1 ] && flavour=cuda
  wheel_dir="$CACHE/wheels/mmcv-$MMCV_VERSION-torch$TORCH_VERSION-py311-$flavour"
  if ! ls "$wheel_dir"/mmcv-*.whl >/dev/null 2>&1; then
    step "building mmcv $MMCV_VERSION from its sdist ($flavour ops; 12 to 30 min on 2 cores, once)"
    build="$(mktemp -d)"
    # no isolation: its metadata step imports pkg_resources and torch
    "${PIP[@]}" download -q --no-deps --no-build-isolation --no-binary :all: "mmcv==$MMCV_VERSION" -d "$build"
    tar -xzf "$build"/mmcv-"$MMCV_VERSION".tar.gz -C "$build"
    src="$build/mmcv-$MMCV_VERSION"
    # torch 2.14's headers need C++20; mmcv's setup.py pins c++14/c++17.
    sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$src/setup.py"
    grep -q 'std=c++20' "$src/setup.py" || fail "could not patch the C++ standard in mmcv's setup.py"
    (cd "$src" && MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
       "${PIP[@]}" wheel --no-build-isolation --no-deps -w "$build/dist" .)
    mkdir -p "$wheel_dir.tmp" && mv "$build"/dist/mmcv-*.whl "$wheel_dir.tmp"/
    mv "$wheel_dir.tmp" "$wheel_dir"   # appears whole or not at all
    rm -rf "$build"
  else
    step "using cached mmcv wheel from $wheel_dir"
  fi
  "${PIP[@]}" install -q "$wheel_dir"/mmcv-*.whl
fi

step "installing yolor-ray and the rest of the stack (editable, with test extras)"
"${PIP[@]}" install -q "$SETUPTOOLS_SPEC" -e "$ROOT[test]"

step "checking imports"
"$PY" -c "import torch, mmcv, mmengine, mmdet, ray, yolor_ray; from mmcv.ops import nms; print('torch', torch.__version__, '| mmcv', mmcv.__version__, '| mmengine', mmengine.__version__, '| mmdet', mmdet.__version__, '| ray', ray.__version__)"
step "ready: $VENV"

#!/usr/bin/env bash
# Build the CUDA mmcv wheel once and put it in S3, where cluster nodes install it from.
#
# Nodes never compile mmcv (cluster.yaml, setup_commands 3-4): they copy this wheel into
# the cache scripts/setup.sh reads and setup.sh installs it in seconds. The wheel is built
# by scripts/setup.sh itself (FORCE_CUDA=1), so it is the same recipe as every other
# install: the mmcv sdist, setuptools<82, C++20, no build isolation.
#
#   scripts/publish_mmcv_wheel.sh s3://my-bucket/yolor-ray/wheels   # or YOLOR_RAY_WHEELS=s3://...
#
# Needs: Linux x86_64, python3.11, the CUDA toolkit (nvcc) of the major version torch's
# wheel was built with (CUDA 13 for torch 2.14.1), the AWS CLI and credentials that may
# write there. No GPU needed: TORCH_CUDA_ARCH_LIST names the GPUs to build for (default:
# A100 8.0, A10G 8.6, L4/L40S 8.9, H100 9.0 plus PTX for newer ones). With 2 cores the
# build takes long (CUDA kernels); a large CPU instance or a GPU node takes minutes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${YOLOR_RAY_CACHE:-$HOME/.cache/yolor-ray}"
fail() { printf '[publish] FAILED: %s\n' "$*" >&2; exit 1; }
step() { printf '\n[publish] %s\n' "$*"; }

DEST="${1:-${YOLOR_RAY_WHEELS:-}}"
DEST="${DEST%/}"
[[ "$DEST" == s3://?* ]] || fail "give the wheels location as s3://bucket/prefix (argument or YOLOR_RAY_WHEELS), got '${DEST}'"
command -v nvcc >/dev/null || fail "nvcc not found: install the CUDA toolkit (CUDA 13 for torch 2.14.1) or add it to PATH"
command -v aws >/dev/null || fail "the AWS CLI (aws) is not installed"

# The versions that key the wheel cache: read from setup.sh, so the two never disagree.
version() { sed -n "s/^$1=//p" "$ROOT/scripts/setup.sh"; }
TORCH_VERSION="$(version TORCH_VERSION)"
MMCV_VERSION="$(version MMCV_VERSION)"
[ -n "$TORCH_VERSION" ] && [ -n "$MMCV_VERSION" ] || fail "could not read the versions from scripts/setup.sh"
KEY="mmcv-$MMCV_VERSION-torch$TORCH_VERSION-py311-cuda"
WHEEL_DIR="$CACHE/wheels/$KEY"

export FORCE_CUDA=1
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-8.0;8.6;8.9;9.0+PTX}"

# A throwaway venv: setup.sh builds (or finds) the CUDA wheel in the cache, installs it and
# imports mmcv.ops; an existing .venv with a CPU mmcv would make it skip the build.
BUILD_VENV="$(mktemp -d)/venv"
trap 'rm -rf "$(dirname "$BUILD_VENV")"' EXIT
step "building mmcv $MMCV_VERSION for torch $TORCH_VERSION with CUDA ops (arch $TORCH_CUDA_ARCH_LIST)"
VENV="$BUILD_VENV" bash "$ROOT/scripts/setup.sh"

wheels=("$WHEEL_DIR"/mmcv-*.whl)
[ -f "${wheels[0]}" ] || fail "no wheel in $WHEEL_DIR after the build"
[ "${#wheels[@]}" = 1 ] || fail "more than one wheel in $WHEEL_DIR: keep one"

step "checking that the wheel carries CUDA ops"
"$BUILD_VENV/bin/python" - <<'PYEOF' || fail "the installed mmcv has no CUDA ops (was it built without FORCE_CUDA=1? remove $WHEEL_DIR and retry)"
from mmcv.ops import get_compiling_cuda_version
cuda = get_compiling_cuda_version()
print("mmcv ops compiled with CUDA", cuda)
raise SystemExit(cuda in ("", "not available"))
PYEOF

step "uploading $(basename "${wheels[0]}") to $DEST/$KEY/"
aws s3 cp --only-show-errors "${wheels[0]}" "$DEST/$KEY/$(basename "${wheels[0]}")"
aws s3 ls "$DEST/$KEY/"
step "done: nodes with YOLOR_RAY_WHEELS=$DEST install it (cluster.yaml)"

#!/usr/bin/env bash
# Creates the project's environment (.venv) and installs everything fq-det needs:
# torch + torchvision, mmcv 2.1.0 with its compiled ops (built once from source, then
# reused from a wheel cache), mmengine, mmdet, the runtime/test requirements and
# fq_det itself in editable mode. Idempotent: a second run checks and returns quickly.
#
# Environment:
#   FQ_VENV         where the environment lives            (default: <repo>/.venv)
#   FQ_WHEEL_CACHE  where the mmcv wheel is kept           (default: ~/.cache/fq-det/wheels)
#   FQ_PYTHON       the interpreter that creates the venv  (default: python3.11, else python3)
#   MAX_JOBS        parallel compile jobs for mmcv         (default: number of cores)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${FQ_VENV:-$REPO/.venv}
WHEEL_CACHE=${FQ_WHEEL_CACHE:-$HOME/.cache/fq-det/wheels}
MMCV_VERSION=2.1.0
STEP="starting"

log() { printf '\033[1;34m[install]\033[0m %s\n' "$*"; }
fail() {
  local rc=$?
  printf '\033[1;31m[install] FAILED at step: %s (exit %s)\033[0m\n' "$STEP" "$rc" >&2
  [ -n "${STEP_LOG:-}" ] && [ -f "$STEP_LOG" ] && { echo "--- last lines of $STEP_LOG ---" >&2; tail -n 40 "$STEP_LOG" >&2; }
  exit "$rc"
}
trap fail ERR
step() { STEP=$1; log "$STEP"; }

# Everything that decides what is installed; when none of it changed since the last
# successful run and the environment still imports, nothing is done.
stamp_of() {
  cat "$REPO"/requirements/*.txt "$REPO/setup.py" "$REPO/scripts/install.sh"
  echo "$REPO" "$MMCV_VERSION"
}
STAMP_FILE=$VENV/.fq-det-install-stamp
PY=$VENV/bin/python
pip_q() {  # pip install, quieter: drops the local-index noise and 'already satisfied' lines
  local out rc=0
  out=$(mktemp)
  "$PY" -m pip install --disable-pip-version-check --progress-bar off "$@" >"$out" 2>&1 || rc=$?
  grep -v -e 'is ignored: it is neither' -e '^Requirement already satisfied' -e '^Looking in ' "$out" || true
  rm -f "$out"
  return "$rc"
}

if [ -f "$STAMP_FILE" ] && [ "$(stamp_of | sha256sum)" = "$(cat "$STAMP_FILE")" ] \
   && "$PY" -c 'import mmcv.ops, mmdet, fq_det' >/dev/null 2>&1; then
  log "environment at $VENV is up to date (nothing to do)"
  exit 0
fi

step "1/6 create the virtual environment at $VENV"
if [ ! -x "$PY" ]; then
  BASE_PY=${FQ_PYTHON:-$(command -v python3.11 || command -v python3)}
  "$BASE_PY" -m venv "$VENV"
fi
"$PY" -c 'import sys; assert sys.version_info >= (3, 10), sys.version' \
  || { echo "fq-det needs Python >= 3.10" >&2; false; }

step "2/6 install torch and torchvision (requirements/torch.txt)"
pip_q -r "$REPO/requirements/torch.txt"

step "3/6 install runtime and test requirements"
pip_q -r "$REPO/requirements/runtime.txt" -r "$REPO/requirements/tests.txt"
pip_q --no-deps -r "$REPO/requirements/openmmlab.txt"

step "4/6 mmcv $MMCV_VERSION with compiled ops"
if "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" >/dev/null 2>&1; then
  log "mmcv $MMCV_VERSION with ops already installed"
else
  mkdir -p "$WHEEL_CACHE"
  # The cached wheel is only valid for the torch it was compiled against.
  TORCH_TAG=$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')
  WHEEL_DIR=$WHEEL_CACHE/torch-$TORCH_TAG
  WHEEL=$(ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
  if [ -z "$WHEEL" ]; then
    log "no cached wheel in $WHEEL_DIR: building mmcv from source (about 30 minutes on 2 cores, once per machine)"
    BUILD=$(mktemp -d)
    STEP_LOG=$BUILD/build.log
    pip_q -r "$REPO/requirements/build.txt"
    "$PY" -m pip download --disable-pip-version-check --no-deps --no-binary :all: \
      --no-build-isolation "mmcv==$MMCV_VERSION" -d "$BUILD" >"$STEP_LOG" 2>&1
    tar -xzf "$BUILD/mmcv-$MMCV_VERSION.tar.gz" -C "$BUILD"
    # torch >= 2.10 headers need C++20; mmcv 2.1.0 asks for C++17.
    sed -i 's/-std=c++17/-std=c++20/g' "$BUILD/mmcv-$MMCV_VERSION/setup.py"
    mkdir -p "$WHEEL_DIR"
    # On a machine without CUDA, mmcv compiles these two folders' sources (its setup.py).
    TOTAL_OBJECTS=$(ls "$BUILD/mmcv-$MMCV_VERSION"/mmcv/ops/csrc/pytorch/*.cpp \
      "$BUILD/mmcv-$MMCV_VERSION"/mmcv/ops/csrc/pytorch/cpu/*.cpp | wc -l)
    # No debug info (-g0 after Python's own -g): the compile takes about half the time,
    # the optimisation level (-O3) is unchanged.
    ( cd "$BUILD/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
        CFLAGS="${CFLAGS:-} -g0" CXXFLAGS="${CXXFLAGS:-} -g0" \
        "$PY" -m pip wheel --disable-pip-version-check --no-deps --no-build-isolation -w "$WHEEL_DIR" . ) \
      >>"$STEP_LOG" 2>&1 &
    BUILD_PID=$!
    SECONDS=0
    while kill -0 "$BUILD_PID" 2>/dev/null; do
      sleep 30
      log "  ... compiling mmcv ops: $(find "$BUILD" -name '*.o' | wc -l)/$TOTAL_OBJECTS objects built, ${SECONDS}s elapsed"
    done
    wait "$BUILD_PID"
    WHEEL=$(ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl | head -n 1)
    rm -rf "$BUILD"
    unset STEP_LOG
  fi
  log "installing $WHEEL"
  pip_q --no-deps --force-reinstall "$WHEEL"
  "$PY" -c 'import mmcv.ops; from mmcv.ops import nms'
fi

step "5/6 install fq_det in editable mode"
# The mmcv build needs setuptools<70; put back the pinned one (runtime.txt).
pip_q "$(grep '^setuptools==' "$REPO/requirements/runtime.txt")"
pip_q --no-deps --no-build-isolation -e "$REPO"

step "6/6 check the installation"
"$PY" - <<'PY'
import torch, mmcv, mmengine, mmdet, fq_det
from mmcv.ops import nms, RoIAlign  # noqa: F401  (compiled ops)
print(f'torch {torch.__version__}, mmengine {mmengine.__version__}, mmcv {mmcv.__version__} (ops), '
      f'mmdet {mmdet.__version__}, fq_det {fq_det.__version__}')
PY
stamp_of | sha256sum >"$STAMP_FILE"
log "done: activate with 'source $VENV/bin/activate'"

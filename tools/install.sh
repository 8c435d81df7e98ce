#!/usr/bin/env bash
# Install cardamage-mmseg and its pinned stack into a virtual environment.
#
#   bash tools/install.sh            # or: make install
#
# Idempotent: every step checks what is already there. Environment knobs:
#   VENV=.venv                 where the environment lives (repo root)
#   PYTHON=python3             interpreter used to create it
#   TORCH_VERSION=2.14.1 TORCHVISION_VERSION=0.29.1
#   CARDAMAGE_CACHE=~/.cache/cardamage-mmseg   built mmcv wheels, by torch
#   MAX_JOBS=<cores>           parallel compile jobs for mmcv
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="${TORCH_VERSION:-2.14.1}"
TORCHVISION_VERSION="${TORCHVISION_VERSION:-0.29.1}"
MMCV_VERSION="2.1.0"
CACHE="${CARDAMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cardamage-mmseg}"
LOG_DIR="$ROOT/work_dirs/install"
LOG="$LOG_DIR/install.log"
mkdir -p "$LOG_DIR" "$CACHE"
: > "$LOG"

STEP="start"
TOTAL=7
step() { STEP="$2"; echo "[install $1/$TOTAL] $2"; }
on_error() {
    echo "" >&2
    echo "install FAILED at step: $STEP" >&2
    echo "last lines of $LOG:" >&2
    tail -n 25 "$LOG" >&2 || true
    exit 1
}
trap on_error ERR
logged() { "$@" >>"$LOG" 2>&1; }

# --------------------------------------------------------------------------
step 1 "checking Python ($PYTHON)"
if ! command -v "$PYTHON" >/dev/null; then
    echo "  $PYTHON not found; set PYTHON=/path/to/python3.11" >&2
    false
fi
"$PYTHON" - <<'EOF'
import sys
if not (3, 8) <= sys.version_info[:2] <= (3, 12):
    sys.exit(f'  Python {sys.version.split()[0]} is not supported: use 3.8-3.12 (3.11 tested)')
print(f'  Python {sys.version.split()[0]}')
EOF

# --------------------------------------------------------------------------
step 2 "virtual environment at $VENV"
if [ ! -x "$VENV/bin/python" ]; then
    logged "$PYTHON" -m venv "$VENV"
    logged "$VENV/bin/python" -m pip install --upgrade pip
    echo "  created"
else
    echo "  exists"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip)

# --------------------------------------------------------------------------
step 3 "torch $TORCH_VERSION + torchvision $TORCHVISION_VERSION"
if "$PY" -c "import torch, torchvision, sys; sys.exit(not (torch.__version__.split('+')[0] == '$TORCH_VERSION' and torchvision.__version__.split('+')[0] == '$TORCHVISION_VERSION'))" 2>/dev/null; then
    echo "  present"
else
    echo "  installing (several GB; pip's cache is reused)"
    logged "${PIP[@]}" install "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
fi
TORCH_FULL="$("$PY" -c 'import torch; print(torch.__version__)')"
# Never let a later step move torch: pip backtracks to another torch when a
# requirement conflicts (measured here: it silently fell back to 2.12.1).
CONSTRAINTS="$LOG_DIR/constraints.txt"
printf 'torch==%s\ntorchvision==%s\n' "$TORCH_VERSION" "$TORCHVISION_VERSION" > "$CONSTRAINTS"

# --------------------------------------------------------------------------
step 4 "Python requirements (requirements/*.txt)"
logged "${PIP[@]}" install -c "$CONSTRAINTS" \
    -r "$ROOT/requirements/runtime.txt" \
    -r "$ROOT/requirements/train.txt" \
    -r "$ROOT/requirements/export.txt" \
    -r "$ROOT/requirements/serve.txt" \
    -r "$ROOT/requirements/hf.txt" \
    -r "$ROOT/requirements/optional.txt" \
    -r "$ROOT/requirements/tests.txt"
echo "  done"

# --------------------------------------------------------------------------
step 5 "mmcv $MMCV_VERSION with compiled ops (for torch $TORCH_FULL)"
mmcv_ok() {
    "$PY" -c "import mmcv, mmcv.ops, sys; sys.exit(mmcv.__version__ != '$MMCV_VERSION')" >/dev/null 2>&1
}
if mmcv_ok; then
    echo "  present and its ops load"
else
    WITH_CUDA="$("$PY" -c "import os, torch; print('cuda' if torch.cuda.is_available() or os.getenv('FORCE_CUDA') == '1' else 'cpu')")"
    PYVER="$("$PY" -c 'import sys; print(f"py{sys.version_info[0]}{sys.version_info[1]}")')"
    # pip's own wheel cache is keyed by mmcv's version only, so a wheel built
    # for another torch would be reused and fail with undefined symbols:
    # our cache is keyed by torch build, Python and ops kind.
    KEY="mmcv-$MMCV_VERSION-torch$TORCH_FULL-$PYVER-${WITH_CUDA}ops"
    WHEEL_DIR="$CACHE/wheels/$KEY"
    mkdir -p "$WHEEL_DIR"
    WHEEL="$(ls "$WHEEL_DIR"/mmcv-*.whl 2>/dev/null | head -n 1 || true)"
    if [ -n "$WHEEL" ]; then
        echo "  reusing cached wheel $WHEEL"
        logged "${PIP[@]}" install --no-deps --force-reinstall "$WHEEL"
    fi
    if ! mmcv_ok; then
        # Prebuilt wheels exist only for the torch/CUDA pairs OpenMMLab
        # published (torch <= 2.1 for mmcv 2.1.0); try them when they can fit.
        TORCH_MM="$("$PY" -c 'import torch; print(".".join(torch.__version__.split("+")[0].split(".")[:2]))')"
        CU="$("$PY" -c 'import torch; v = torch.version.cuda; print("cu" + v.replace(".", "") if v and torch.cuda.is_available() else "cpu")')"
        case "$TORCH_MM" in
            1.8|1.9|1.10|1.11|1.12|1.13|2.0|2.1)
                echo "  trying OpenMMLab's prebuilt wheel ($CU/torch$TORCH_MM)"
                logged "${PIP[@]}" install --only-binary mmcv --retries 0 --timeout 20 \
                    "mmcv==$MMCV_VERSION" -f "https://download.openmmlab.com/mmcv/dist/$CU/torch$TORCH_MM/index.html" \
                    || echo "  no prebuilt wheel reachable"
                ;;
            *) echo "  no prebuilt mmcv $MMCV_VERSION exists for torch $TORCH_MM: building from source" ;;
        esac
    fi
    if ! mmcv_ok; then
        BUILD="$CACHE/build/$KEY"
        rm -rf "$BUILD" && mkdir -p "$BUILD"
        # mmcv 2.1.0's setup.py imports pkg_resources (gone from new
        # setuptools): give the build an old setuptools without touching
        # the venv's own (torch >= 2.14 requires setuptools >= 77).
        OLD_ST="$CACHE/setuptools-lt70"
        if [ ! -d "$OLD_ST/setuptools" ]; then
            logged "${PIP[@]}" install --no-deps --target "$OLD_ST" 'setuptools<70'
        fi
        logged "${PIP[@]}" install ninja wheel
        echo "  fetching the mmcv $MMCV_VERSION source archive"
        PYTHONPATH="$OLD_ST" logged "${PIP[@]}" download --no-deps --no-binary mmcv \
            --no-build-isolation "mmcv==$MMCV_VERSION" -d "$BUILD"
        tar -xzf "$BUILD/mmcv-$MMCV_VERSION.tar.gz" -C "$BUILD"
        SRC="$BUILD/mmcv-$MMCV_VERSION"
        # torch >= 2.14's headers need C++20; mmcv 2.1.0 hard-codes C++17.
        sed -i 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
        JOBS="${MAX_JOBS:-$(nproc)}"
        echo "  compiling mmcv ops with $JOBS job(s): about 15 min on 2 cores (log: $LOG)"
        (cd "$SRC" && PYTHONPATH="$OLD_ST" MMCV_WITH_OPS=1 MAX_JOBS="$JOBS" \
            "${PIP[@]}" wheel --no-build-isolation --no-deps -v . -w "$WHEEL_DIR" >>"$LOG" 2>&1) &
        BUILD_PID=$!
        while kill -0 "$BUILD_PID" 2>/dev/null; do
            sleep 30
            PROGRESS="$(grep -oE '^ *\[[0-9]+/[0-9]+\]' "$LOG" | tail -n 1 | tr -d ' ' || true)"
            echo "  ... compiling ${PROGRESS:-(preparing)}  $(date +%H:%M:%S)"
        done
        wait "$BUILD_PID"
        WHEEL="$(ls "$WHEEL_DIR"/mmcv-*.whl | head -n 1)"
        logged "${PIP[@]}" install --no-deps --force-reinstall "$WHEEL"
        rm -rf "$BUILD"
        echo "  built and cached $WHEEL"
    fi
    mmcv_ok || { echo "  mmcv installed but its ops do not load" >&2; false; }
fi

# --------------------------------------------------------------------------
step 6 "cardamage_mmseg (editable)"
logged "${PIP[@]}" install --no-deps --no-build-isolation -e "$ROOT"
echo "  done"

# --------------------------------------------------------------------------
step 7 "checking the stack"
"$PY" - <<'EOF'
# cardamage_mmseg first: its compat shim lets mmseg import next to
# transformers >= 4.56 (requirements/hf.txt)
import cardamage_mmseg.register
import mmcv, mmcv.ops, mmengine, mmseg, torch
import mmseg.models  # fails without mmcv's compiled ops
print(f'  torch {torch.__version__}, mmcv {mmcv.__version__}, mmengine '
      f'{mmengine.__version__}, mmseg {mmseg.__version__}, cardamage_mmseg '
      f'{cardamage_mmseg.__version__}')
EOF
echo "installed: activate with 'source $VENV/bin/activate'"

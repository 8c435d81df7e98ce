#!/usr/bin/env bash
# Issue #9's GPU figures in one command, on a GPU machine with no internet.
#
#   bash benchmarks/gpu_check.sh [all | speed baselines accuracy ...]
#
# Before: on a machine with pip, `bash benchmarks/gpu_wheels.sh` puts
# the OpenMMLab wheels and mmcv's source in .whl/; copy the repo with it.
# Steps (each prints its table, all logs under $OUT, default
# work_dirs/gpu_check):
#   setup     install .whl/*.whl into /tmp/cardamage-site; build mmcv's ops
#             in place if `import mmcv.ops` fails (CPU ops suffice for the
#             models here; about 2 min with 16 jobs)
#   speed     gpu_speed.py SegFormer-b3 at batch 32 (HF reference, stock
#             mmseg, SDPA MiT, bf16, channels_last, compile, project path)
#             and at batch 8 fp32, with ratios to the HF best
#   baselines the other configs, fp32 vs bf16 + channels_last, project path
#   accuracy  the demo config trained from the same seed in fp32 twice (the
#             noise) and with FAST_FLAGS (default "--amp --compile"),
#             each validated
#   infer     infer_pipeline.py on 12 MP photos: model-only vs end-to-end
#             tools/infer.py pipeline (issue #16's >= 0.9x), per worker and
#             writer setting, with the machine's core count; the null model
#             in 1, 2, 4, .. independent processes (N processes ~ N x?)
# Knobs: PYTHON, OUT, WHL, DEVICE (cuda), SIZE (512), STEPS (20), ITERS (300)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WHAT=" ${*:-all} "
want() { [[ "$WHAT" == *" all "* || "$WHAT" == *" $1 "* ]]; }
PY="${PYTHON:-python3}"
OUT="${OUT:-work_dirs/gpu_check}"
WHL="${WHL:-.whl}"
DEVICE="${DEVICE:-cuda}"
SIZE="${SIZE:-512}"
STEPS="${STEPS:-20}"
ITERS="${ITERS:-300}"
FAST_FLAGS="${FAST_FLAGS---amp --compile}"
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"

# ---- setup ----------------------------------------------------------------
if ls "$WHL"/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target /tmp/cardamage-site "$WHL"/*.whl || exit 1
    export PYTHONPATH="/tmp/cardamage-site${PYTHONPATH:+:$PYTHONPATH}"
fi
if ! "$PY" -c "import mmcv.ops" >/dev/null 2>&1; then
    SRC=/tmp/mmcv-2.1.0
    if [ ! -d "$SRC" ]; then
        [ -f "$WHL/mmcv-2.1.0.tar.gz" ] || {
            echo "error: no working mmcv and no $WHL/mmcv-2.1.0.tar.gz" \
                 "(run benchmarks/gpu_wheels.sh where pip works)" >&2
            exit 1; }
        tar -xzf "$WHL/mmcv-2.1.0.tar.gz" -C /tmp
        # torch >= 2.14's headers need C++20; mmcv 2.1.0 hard-codes C++17
        sed -i 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
    fi
    echo "== building mmcv's ops in $SRC (log $OUT/mmcv_build.log)"
    (cd "$SRC" && CUDA_VISIBLE_DEVICES= MAX_JOBS="${MAX_JOBS:-16}" \
        "$PY" setup.py build_ext --inplace >"$ROOT/$OUT/mmcv_build.log" 2>&1) \
        || { tail -20 "$OUT/mmcv_build.log"; exit 1; }
    export PYTHONPATH="$SRC:$PYTHONPATH"
fi
"$PY" -c "import torch, mmcv.ops, mmseg.models; print('torch', torch.__version__, \
'| mmcv', mmcv.__version__, '|', torch.cuda.get_device_name() \
if torch.cuda.is_available() else 'no GPU')" || exit 1
status=0

# ---- speed ------------------------------------------------------------------
if want speed; then
    echo "== SegFormer-b3 throughput, batch 32"
    "$PY" benchmarks/gpu_speed.py --arch b3 --batch 32 --size "$SIZE" \
        --steps "$STEPS" --device "$DEVICE" --out "$OUT/b3_batch32" \
        2>&1 | tee "$OUT/speed_b3_batch32.log" || status=1
    echo "== SegFormer-b3 throughput, batch 8 (no compile)"
    "$PY" benchmarks/gpu_speed.py --arch b3 --batch 8 --size "$SIZE" \
        --steps "$STEPS" --device "$DEVICE" --no-compile \
        --out "$OUT/b3_batch8" 2>&1 | tee "$OUT/speed_b3_batch8.log" \
        || status=1
fi

# ---- baselines --------------------------------------------------------------
if want baselines; then
    echo "== the other baselines, batch 8: fp32 vs bf16 + channels_last"
    "$PY" benchmarks/gpu_speed.py --arch b0 --batch 8 --size "$SIZE" \
        --steps "$STEPS" --device "$DEVICE" --no-segformer --no-compile \
        --configs configs/upernet_swin-t_cardamage.py \
        configs/dpt_vit-b16_cardamage.py \
        configs/deeplabv3_mobilevit-s_cardamage.py \
        configs/deeplabv3_mobilevitv2_cardamage.py \
        --out "$OUT/baselines" 2>&1 | tee "$OUT/speed_baselines.log" \
        || status=1
fi

# ---- accuracy -----------------------------------------------------------------
if want accuracy; then
    DATA=data/car_damage_demo
    if [ ! -d "$DATA/img_dir/val" ]; then
        for split in train val; do
            "$PY" tools/dataset_converters/via_to_mmseg.py \
                "data/demo/car-damage-detector/dataset/$split/via_region_data.json" \
                --out "$DATA" --split "$split" --size 512 --nproc 8 || exit 1
        done
    fi
    CONFIG=configs/segformer_b0_cardamage_demo.py
    # fp32 twice: the spread between the two is the run-to-run noise of
    # GPU kernels, the yardstick for "same mIoU" with the speed settings
    for mode in fp32 fp32_again fast; do
        flags=(); [ "$mode" = fast ] && read -r -a flags <<<"$FAST_FLAGS"
        work="$OUT/accuracy_$mode"
        echo "== accuracy: $CONFIG, $ITERS iterations, $mode ${flags[*]}"
        start=$(date +%s)
        "$PY" tools/train.py "$CONFIG" --work-dir "$work" "${flags[@]}" \
            --cfg-options "train_cfg.max_iters=$ITERS" \
            "train_cfg.val_interval=$ITERS" \
            "default_hooks.checkpoint.interval=$ITERS" \
            >"$work.log" 2>&1 || { tail -30 "$work.log"; status=1; continue; }
        echo "   trained in $(( $(date +%s) - start )) s; $(grep -o \
            'mIoU: [0-9.]*.*' "$work.log" | tail -1)"
    done
fi
# ---- infer ------------------------------------------------------------------
if want infer; then
    echo "== 12 MP inference pipeline vs model alone ($(nproc) cores)"
    "$PY" benchmarks/infer_pipeline.py --device "$DEVICE" --photos 64 \
        --batch-size 16 --what e2e components scaling --out-dir "$OUT" \
        2>&1 | grep -v "mmengine - INFO" | tee "$OUT/infer_pipeline.log" \
        || status=1
fi
exit $status

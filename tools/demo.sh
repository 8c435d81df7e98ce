#!/usr/bin/env bash
# Train SegFormer-b0 briefly on the bundled sample (CPU), test it and draw
# overlays. Run through `make demo` (which installs and converts first).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PY:-$ROOT/.venv/bin/python}"
CONFIG=configs/segformer_b0_cardamage_demo.py
WORK=work_dirs/segformer_b0_cardamage_demo
echo "== training SegFormer-b0 on data/car_damage_demo (300 iterations, CPU) =="
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK"
CKPT="$WORK/iter_300.pth"
echo "== testing $CKPT on the val split, drawing overlays =="
"$PY" tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK" \
    --show-dir "$WORK/show" --out "$WORK/pred"
echo ""
echo "demo finished:"
echo "  checkpoint : $WORK/iter_300.pth"
echo "  metrics    : $WORK/<timestamp>/<timestamp>.json"
echo "  overlays   : $WORK/show/vis_data/vis_image/ (ground truth | prediction)"
echo "  masks      : $WORK/pred/ (PNG class ids)"

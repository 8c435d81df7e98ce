#!/usr/bin/env bash
# Fetch what benchmarks/gpu_check.sh needs on a GPU machine WITHOUT
# internet whose python already has torch (+ torchvision, transformers, timm,
# numpy, scipy, matplotlib, opencv): the OpenMMLab stack as wheels for that
# machine's Python, and mmcv's source archive (built there, no prebuilt
# wheel exists for new torch). Run it where pip reaches PyPI:
#
#   bash benchmarks/gpu_wheels.sh [DIR=.whl] [PYTHON_VERSION=3.12]
#
# then copy the repo with DIR to the GPU machine.
set -euo pipefail
DIR="${1:-.whl}"
PYV="${2:-3.12}"
# a python with setuptools and wheel (mmcv's sdist runs its setup.py for metadata)
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}"
mkdir -p "$DIR"
# pure-Python packages the device image may lack (pip --no-deps: all named);
# setuptools < 81 keeps pkg_resources, which mmengine and mmcv's setup.py import
PKGS=(mmengine==0.10.7 mmsegmentation==1.2.2 mmpretrain==1.2.0 addict yapf
      "setuptools>=77,<81"
      platformdirs termcolor prettytable wcwidth ftfy mat4py modelindex
      ordered-set importlib-metadata)
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYV" \
    --implementation cp --platform manylinux2014_x86_64 --platform any \
    -d "$DIR" "${PKGS[@]}"
"$PY" -m pip download -q --no-deps --no-binary mmcv --no-build-isolation \
    mmcv==2.1.0 -d "$DIR"
ls -1 "$DIR"
du -sh "$DIR"

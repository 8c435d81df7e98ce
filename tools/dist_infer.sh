#!/usr/bin/env bash
# Sharded inference over several processes / GPUs / nodes (torchrun); each
# process segments every GPUS-th photo, rank 0 writes one merged report.
#   tools/dist_infer.sh CONFIG CHECKPOINT GPUS INPUT [infer.py args]
#   (an ensemble config takes no checkpoint: pass "" as CHECKPOINT)
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
INPUT=$4
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
DIR="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${PYTHON:-python}
PYTHONPATH="$DIR:${PYTHONPATH:-}" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$DIR/tools/infer.py" "$CONFIG" ${CHECKPOINT:+"$CHECKPOINT"} "$INPUT" \
    --launcher pytorch "${@:5}"

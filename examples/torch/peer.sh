#!/usr/bin/env bash
# zoopt's MeZO vs MeZO as PyTorch users write it (mezo_peer.py), on the same
# TorchScript module, start, minibatches, lr and thread count: time per step
# and equal-budget curves (DIR/curve_mezo*.csv), for the fine-tuned tensors
# of the example (head + LayerNorms, lr LR) and for all of them (lr LR_ALL:
# MeZO on all 231k parameters diverges at the head's tuned lr). Needs
# DIR/pretrained.pt from run.sh.
# Arguments: DIR [PASSES (3000)] [LR (4e-3)] [LR_ALL (2e-4)] [THREADS (2)].
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/env.sh"
here="$ZOOPT_ROOT/examples/torch"
bin="$ZOOPT_BUILD/examples/torch/zoopt_torch_transformer"
py=/usr/bin/python3
[ -x "$py" ] || py=python3
out=$1
passes=${2:-3000}
lr=${3:-4e-3}
lr_all=${4:-2e-4}
threads=${5:-2}
"$py" -W ignore "$here/export_torchscript.py" "$out/model_script.pt" >/dev/null
"$bin" --phase export-start --torchscript "$out/model_script.pt" --out "$out"
for sel in "" --all-tensors; do
  rate=$lr
  [ -z "$sel" ] || rate=$lr_all
  "$bin" --phase finetune --method mezo --torchscript "$out/model_script.pt" --out "$out" \
    --passes "$passes" --lr "$rate" --threads "$threads" $sel 2>/dev/null | grep '^RESULT '
  "$py" -W ignore "$here/mezo_peer.py" --start "$out/start_seed0.pt" --out "$out" \
    --passes "$passes" --lr "$rate" --threads "$threads" $sel 2>/dev/null | grep '^RESULT '
done
"$bin" --phase plot --out "$out"

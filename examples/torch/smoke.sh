#!/usr/bin/env bash
# CI smoke run of zoopt_torch_transformer: pre-train a few steps, then each
# method for a small budget; fails if any phase fails or prints no RESULT.
set -euo pipefail
bin=$1
out=$2
"$bin" --phase pretrain --smoke --out "$out" --threads 1
for m in backprop mezo fzoo; do
  "$bin" --phase finetune --method "$m" --passes 90 --out "$out" --threads 1 | grep "^RESULT $m,"
done

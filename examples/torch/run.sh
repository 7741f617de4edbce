#!/usr/bin/env bash
# The transformer comparison: builds zoopt_torch_transformer (installs
# libtorch-dev if missing), pre-trains once, fine-tunes with each method in
# its own process (so each peak-memory figure is that run's own) and prints
# one table; then the peak memory of each method on a larger, randomly
# initialised model of the same shape (d_model 512, 6 layers: 12.7M
# parameters), where the model, not libtorch's working buffers, sets it.
# Arguments: [OUT_DIR (default zoopt-torch-out)] [PASSES (9000)]
# [MEZO_LR (2e-3)] [FZOO_LR (8e-3)].
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/env.sh"
bash "$ZOOPT_ROOT/scripts/install-deps.sh" libtorch-dev libopenblas0-pthread python3-torch
cmake -S "$ZOOPT_ROOT" -B "$ZOOPT_BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$ZOOPT_BUILD" -j "$ZOOPT_JOBS" --target zoopt_torch_transformer
bin="$ZOOPT_BUILD/examples/torch/zoopt_torch_transformer"
out=${1:-zoopt-torch-out}
passes=${2:-9000}
declare -A lr=([backprop]=1e-3 [backprop-full]=1e-3 [mezo]=${3:-2e-3} [fzoo]=${4:-8e-3})
"$bin" --phase pretrain --out "$out"
results=()
for m in backprop backprop-full mezo fzoo; do
  results+=("$("$bin" --phase finetune --method "$m" --passes "$passes" --lr "${lr[$m]}" --out "$out" | grep '^RESULT ')")
done
{
  echo "| method | steps | forward passes | wall s | ms/step | test acc | test loss | peak RSS growth MiB | params MiB | trained MiB | grad+optimizer state MiB |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  for r in "${results[@]}"; do
    IFS=, read -r m s p w ms a l rss pb tb sb <<<"${r#RESULT }"
    awk -v m="$m" -v s="$s" -v p="$p" -v w="$w" -v ms="$ms" -v a="$a" -v l="$l" -v rss="$rss" \
        -v pb="$pb" -v tb="$tb" -v sb="$sb" 'BEGIN {
      printf "| %s | %s | %s | %s | %s | %.2f%% | %s | %s | %s | %s | %s |\n", m, s, p, w, ms, 100 * a, l, rss, pb, tb, sb }'
  done
} | tee "$out/summary.md"
"$bin" --phase plot --out "$out"

echo
echo "Peak memory, d_model 512, 6 layers (12.7M parameters, random weights), 18 forward passes:"
{
  echo "| method | trained MiB | ms/step | peak RSS growth MiB | grad+optimizer state MiB |"
  echo "|---|---|---|---|---|"
  for spec in backprop backprop-full mezo "mezo --all-tensors" "fzoo --all-tensors"; do
    # shellcheck disable=SC2086
    r=$("$bin" --phase finetune --method $spec --d-model 512 --layers 6 --passes 18 \
          --out "$out/large" | grep '^RESULT ')
    IFS=, read -r m s p w ms a l rss pb tb sb <<<"${r#RESULT }"
    echo "| $m | $tb | $ms | $rss | $sb |"
  done
} | tee "$out/memory.md"

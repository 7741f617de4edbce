#!/usr/bin/env bash
# The transformer comparison: builds zoopt_torch_transformer (installs
# libtorch-dev if missing), pre-trains once, fine-tunes with each method in
# its own process (so each peak-memory figure is that run's own) and prints
# one table. Arguments: [OUT_DIR (default zoopt-torch-out)] [PASSES (9000)].
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/env.sh"
bash "$ZOOPT_ROOT/scripts/install-deps.sh" libtorch-dev libopenblas0-pthread python3-torch
cmake -S "$ZOOPT_ROOT" -B "$ZOOPT_BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$ZOOPT_BUILD" -j "$ZOOPT_JOBS" --target zoopt_torch_transformer
bin="$ZOOPT_BUILD/examples/torch/zoopt_torch_transformer"
out=${1:-zoopt-torch-out}
passes=${2:-9000}
"$bin" --phase pretrain --out "$out"
results=()
for m in backprop backprop-full mezo fzoo; do
  results+=("$("$bin" --phase finetune --method "$m" --passes "$passes" --out "$out" | grep '^RESULT ')")
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

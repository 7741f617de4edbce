#!/usr/bin/env bash
# CI smoke run of zoopt_torch_transformer: pre-train a few steps, then each
# method for a small budget; fails if any phase fails or prints no RESULT.
# With python3-torch, also the PyTorch MeZO peer (mezo_peer.py) on the
# exported TorchScript start, checking that it starts where zoopt's run on
# the same module starts (the same test loss before the first step).
set -euo pipefail
bin=$1
out=$2
here="$(dirname "${BASH_SOURCE[0]}")"
mkdir -p "$out"
rm -f "$out"/curve_*.csv
"$bin" --phase pretrain --smoke --out "$out" --threads 1
for m in backprop mezo fzoo; do
  "$bin" --phase finetune --method "$m" --passes 90 --out "$out" --threads 1 --smoke |
    grep "^RESULT $m,"
done
"$bin" --phase plot --out "$out" | grep "(3 curves)"
grep -q "<svg" "$out/curves.svg"
py=/usr/bin/python3
[ -x "$py" ] || py=python3
if ! "$py" -c "import torch" 2>/dev/null; then
  echo "skipped the PyTorch peer: python3 cannot import torch"
  exit 0
fi
"$py" -W ignore "$here/export_torchscript.py" "$out/model_script.pt"
"$bin" --phase export-start --torchscript "$out/model_script.pt" --out "$out"
"$bin" --phase finetune --method mezo --torchscript "$out/model_script.pt" --passes 8 \
  --out "$out" --threads 1 --smoke | grep "^RESULT mezo,"
"$py" -W ignore "$here/mezo_peer.py" --start "$out/start_seed0.pt" --passes 8 --out "$out" \
  --threads 1 | grep "^RESULT mezo-pytorch,"
# Row 2 of each curve is the evaluation before the first step; column 5 is
# its test loss (zoopt's CSV prints 6 significant digits).
a=$(sed -n 2p "$out/curve_mezo.csv" | cut -d, -f5)
b=$(sed -n 2p "$out/curve_mezo-pytorch.csv" | cut -d, -f5)
awk -v a="$a" -v b="$b" 'BEGIN {
  d = a - b; if (d < 0) d = -d
  if (d > 1e-5 * a) { printf "start differs: zoopt test loss %s, PyTorch peer %s\n", a, b; exit 1 }
  printf "same start: test loss %s (zoopt) and %s (PyTorch peer)\n", a, b }'

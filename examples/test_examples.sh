#!/usr/bin/env bash
# Runs every example as a user would (meson test examples): the MLP on the shapes class
# folders written by `mmgrad data shapes`, CLIP in under a hundred lines for a few steps,
# and embed_checkpoint on a freshly trained tiny run. Each example exits non-zero when its
# own check fails (wrong gradient, accuracy at chance, loss not falling).
#   test_examples.sh MMGRAD_BINARY EXAMPLES_BUILD_DIR
set -euo pipefail
app=$1
bin=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
step() { echo "== $*"; }

step autograd_basics
"$bin/autograd_basics"

step "mlp_mnist on the shapes class folders"
"$app" data shapes --out "$work/shapes" --count 300 --image-size 16 --split train
"$bin/mlp_mnist" "$work/shapes/classes" 150

step "clip_in_100_lines (60 steps)"
"$bin/clip_in_100_lines" 60

step "embed_checkpoint on a tiny trained run"
"$app" train --run-dir "$work/run" --set steps=3 --set image_size=16 --set patch_size=8 --set vision_width=32 \
  --set text_width=32 --set embed_dim=32 --set vision_layers=1 --set text_layers=1 --set vision_heads=2 \
  --set text_heads=2 --set batch_size=16 --set train_size=2000 --set tokenizer_vocab=400 --set eval_size=20 >/dev/null
out=$("$bin/embed_checkpoint" "$work/run/checkpoint.safetensors" "$work/shapes/images/00000.png" \
      "$work/shapes/images/00001.png" -- "a red circle" "a blue square")
echo "$out"
[ "$(grep -c '  best: ' <<< "$out")" -eq 2 ] || { echo "embed_checkpoint: expected a best text for each of 2 images"; exit 1; }
echo "examples: all passed"

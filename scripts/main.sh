#!/usr/bin/env bash
# The main job: install what is missing, build, then train the default model (shapes-small:
# CLIP + image-text matching + captioning on the built-in shapes dataset) and report its
# held-out evaluation. Extra arguments go to `mmgrad train` (e.g. --set steps=300).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
exec build/apps/mmgrad train "$@"  # the run folder: runs/shapes-small-<date>-<time>

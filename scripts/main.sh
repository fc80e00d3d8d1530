#!/usr/bin/env bash
# The main job: install, build, then train the default model and report.
# Until the multimodal models land, that is the worked example: an MLP trained with
# mmgrad's autograd on a synthetic two-spirals task.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
exec build/apps/mmgrad mlp "$@"

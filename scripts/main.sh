#!/usr/bin/env bash
# The main job: install what is missing, build, then train the default model (shapes-small:
# CLIP + image-text matching + captioning on the built-in shapes dataset) and report its
# held-out evaluation. Extra arguments go to `mmgrad train` (e.g. --set steps=300).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
# The main job runs on the best OpenBLAS kernel for this CPU even when the environment names a
# weaker one (these machines set OPENBLAS_CORETYPE=Haswell on AVX-512 CPUs): mmgrad replaces
# it and says so. MMGRAD_BLAS_OVERRIDE_CORETYPE=0 keeps the environment's choice.
export MMGRAD_BLAS_OVERRIDE_CORETYPE=${MMGRAD_BLAS_OVERRIDE_CORETYPE:-1}
exec build/apps/mmgrad train "$@"  # the run folder: runs/shapes-small-<date>-<time>

#!/usr/bin/env bash
# GPU tier: closeness to the reference (unsorted, sorted) and layout agreement (which also runs the sorted
# layout without its tile table and with its work grouped: table tiles, column tiles) under compute-sanitizer's
# memcheck; any report fails it.
# Each tensor gets its own cudaMalloc (no caching allocator), and each launch argument is copied out of the
# suite's margins into one of exactly its span (LORA_TIGHT, lora_verify/tight.py), with memcheck's padding after
# each: so a stray address past an argument is outside every allocation memcheck knows of.
# Usage: scripts/sanitize.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTORCH_NO_CUDA_MEMORY_CACHING=1 LORA_TIGHT=1 HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-dev}"
exec compute-sanitizer --tool memcheck --padding 16384 --error-exitcode 86 --print-limit 5 \
  python3 -m pytest -p no:xdist -p no:randomly -q -x lora_verify/suite/test_properties.py -k "close_to_reference or both" "$@"

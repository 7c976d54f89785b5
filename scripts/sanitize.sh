#!/usr/bin/env bash
# GPU tier: closeness to the reference (unsorted, sorted) and layout agreement (which also runs the sorted
# layout without its tile table and with its work grouped: table tiles, column tiles) under compute-sanitizer's
# memcheck; any report fails it. The command, tier and environment are the mutation runner's
# (lora_verify/mutate.py: MEMCHECK, MEMCHECK_TESTS, MEMCHECK_ENV): each tensor its own cudaMalloc, each launch
# argument copied out of the suite's margins into one of exactly its span (lora_verify/tight.py), memcheck's
# padding after each; so a stray address past an argument is outside every allocation memcheck knows of.
# Usage: scripts/sanitize.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
export HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-dev}"
mapfile -d '' cmd < <(python3 -c "import sys; from lora_verify.mutate import MEMCHECK, MEMCHECK_ENV, MEMCHECK_TESTS
sys.stdout.write('\0'.join(['env', *(f'{k}={v}' for k, v in MEMCHECK_ENV.items()), *MEMCHECK, sys.executable, '-m',
                            'pytest', '-p', 'no:randomly', '-q', '-x', *MEMCHECK_TESTS]))")
exec "${cmd[@]}" "$@"

#!/usr/bin/env bash
# The whole suite on one GPU under the gpu profile (1,000 examples a property), timed: a GPU CI run.
#
#   scripts/gpu_suite.sh OUTDIR [N]        (GPU_SUITE_K: a pytest -k expression, for part of the suite)
#
# N pytest-xdist workers (default: cores - 1; a worker lost to a crash or hang of the kernels is replaced,
# lora_verify.faults), a fresh Triton cache (the compiles are part of the time; the terminal summary counts
# them). OUTDIR/gpu_suite.log holds pytest's output with the 40 slowest tests, each skip's reason and the verdict table,
# OUTDIR/verdicts.json the table, OUTDIR/time.txt the wall time. Run from the repository root with the peers'
# kernel files on PYTHONPATH (.carry) for the adapters' tests, as docs/results/README.md does.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/gpu_suite.sh OUTDIR [N]}; n=${2:-$(($(nproc) - 1))}
mkdir -p "$out"; out=$(realpath "$out")
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
export TRITON_CACHE_DIR=${TRITON_CACHE_DIR:-$(mktemp -d)/triton}
export PYTHONPATH=${PYTHONPATH:-.carry}
start=$(date +%s.%N)
HYPOTHESIS_PROFILE=gpu python3 -m pytest -n "$n" ${GPU_SUITE_K:+-k "$GPU_SUITE_K"} --maxschedchunk 1 -q -rs \
  -p no:cacheprovider --durations=40 --verdicts-json "$out/verdicts.json" --case-dir "$out/cases" >"$out/gpu_suite.log" 2>&1
status=$?
end=$(date +%s.%N)
echo "exit $status; wall $(python3 -c "print(f'{$end - $start:.0f}')") s with -n $n" | tee "$out/time.txt"
grep -E "passed|failed|Triton compiles" "$out/gpu_suite.log" | tail -3

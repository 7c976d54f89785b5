#!/usr/bin/env bash
# Fuzzing kernels that crash or hang (lora_verify.faults): the run survives, each faulting batch is saved once
# as a case named for its fault, and the batches that do not fault keep their rate.
#
#   scripts/fuzz_faults.sh OUTDIR [MINUTES] [N] [WATCHDOG_S] [-k EXPR]
#
# Three time-boxed runs of lora-verify fuzz, MINUTES each with N workers and the watchdog at WATCHDOG_S, on
# copies of the tree: clean (the rate to compare with), then with each planted fault of lora_verify/mutants.py:
#   shrink_x_far_past      x read 64 GiB past its row for rows past 30: an illegal address on a GPU (the
#                          worker's CUDA context dies), MemoryViolation from the interpreter's bounds layer on CPU
#   shrink_k_loop_endless  a K loop 2^40 past its end in tiles with a row past 30: a hang
# OUTDIR/<run>.log and .json: the verdict table (each fault under its property, with its case), the rates (the
# whole run, and while the workers ran), compiles; OUTDIR/cases_<run>/: the cases; OUTDIR/rounds_<run>.log:
# pytest's output (workers replaced). Then one case of each planted run is replayed (OUTDIR/replay_<run>.log):
# the fault is named again and the replay exits 1. "-k EXPR" narrows the fuzzed tests (on CPU, where the
# interpreter is slow: -k sgemm_lora_a, the operation the faults are planted in).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/fuzz_faults.sh OUTDIR [MINUTES] [N] [WATCHDOG_S]}
minutes=${2:-1}; n=${3:-2}; watchdog=${4:-20}; shift $(($# < 4 ? $# : 4))
select=(--pyargs lora_verify.suite.test_properties lora_verify.suite.test_routing "$@")
mkdir -p "$out"; out=$(realpath "$out")
work=$(mktemp -d)
for run in clean shrink_x_far_past shrink_k_loop_endless; do
  tree="$work/$run"
  mkdir -p "$tree" && git ls-files -co --exclude-standard | grep -v '^\.carry' | tar cf - -T - | tar xf - -C "$tree"
  if [ "$run" != clean ]; then
    (cd "$tree" && python3 -c "from pathlib import Path; from lora_verify.mutants import BY_NAME; \
BY_NAME['$run'].apply(Path('.'))")
  fi
  (cd "$tree" && LORA_WATCHDOG_S=$watchdog LORA_FUZZ_DB="$work/db_$run" python3 -m lora_verify fuzz \
    --minutes "$minutes" -n "$n" --case-dir "$out/cases_$run" --report "$out/$run.json" --log "$out/rounds_$run.log" \
    -- "${select[@]}" >"$out/$run.log" 2>&1)
  rc=$?
  echo "== $run: exit $rc; $(ls "$out/cases_$run" 2>/dev/null | wc -l) case files; workers lost and replaced: \
$(grep -c "node down" "$out/rounds_$run.log")"
  tr '\r' '\n' <"$out/$run.log" | grep -E 'FAIL|    (crash|hang):|batches in'
  case=$(ls "$out"/cases_$run/*.json 2>/dev/null | head -1)
  if [ "$run" != clean ] && [ -n "$case" ]; then
    (cd "$tree" && LORA_WATCHDOG_S=$watchdog timeout 900 python3 -m lora_verify replay "$case") \
      >"$out/replay_$run.log" 2>&1
    rc=$?
    echo "   replay of $(basename "$case"): exit $rc; $(grep -E '^(crash|hang):|FAILS|holds' "$out/replay_$run.log" | head -2 | tr '\n' ' ')"
  fi
done

#!/usr/bin/env bash
# Fuzzing throughput on one GPU (lora-verify fuzz): checked batches per second with 1 and N workers, the
# Triton compiles apart. About 4 minutes.
#
#   scripts/fuzz_throughput.sh OUTDIR [N] [BUNDLE]
#
# 1. warm-up (60 s, N workers): compiles the kernel variants the fuzz profile meets first, into a fresh
#    Triton cache; its report counts them (compiles, compile seconds summed over the workers);
# 2. timed runs of 36 s each, on the warm cache: 1 worker; N workers; N workers with bundles of BUNDLE
#    batches per hypothesis example; N workers with the loop reference on the CPU instead of the device
#    reference (LORA_DEVICE_REFERENCE=, lora_verify/layouts.py), when a device reference is installed; with
#    "device" in RUNS, N workers with the device reference for every case, however small (as before 2^25 products
#    became its floor: LORA_DEVICE_REFERENCE_MIN_PRODUCTS=0).
# Each prints (OUTDIR/NAME.log, .json) its rate over the whole run and while its workers ran (start-up left
# out), the compiles it still met, the verdicts, and the box's load (the cores' busy share, the GPU's).
# Steady state: the "while the workers ran" rate.
# WARMUP_MIN, BOX_MIN (minutes: 1.0, 0.6) and RUNS (default "one_worker n_workers n_workers_bundle loops")
# shorten it to fit a call. SWEEP="W:B ..." adds a run per pair, W workers with bundles of B (named wW_bB), after
# RUNS: how the rate scales with the workers sharing the GPU and with the batches per example.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/fuzz_throughput.sh OUTDIR [N] [BUNDLE]}
n=${2:-$(($(nproc) - 1))}; bundle=${3:-8}
mkdir -p "$out"; out=$(realpath "$out")
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
export TRITON_CACHE_DIR=${TRITON_CACHE_DIR:-$(mktemp -d)/triton}  # fresh: the warm-up's compiles are all counted
export LORA_FUZZ_DB=$(mktemp -d)/db
python3 - <<'PY' | tee "$out/setup.txt"
import os, torch
from lora_verify import layouts
m = layouts._device_reference(layouts.DEVICE_REFERENCE) if layouts.DEVICE_REFERENCE else None
device = f"{m.__name__} from {layouts.DEVICE_REFERENCE_MIN_PRODUCTS} products, below it " if m else ""
print(f"device: {torch.cuda.get_device_name(0)} | cores: {os.cpu_count()} | "
      f"reference on the GPU: {device}loops (reference/loops.py, on the CPU)")
PY
cpu_times() { awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat; }  # busy and idle jiffies, all cores
fuzz() {  # NAME MINUTES WORKERS BUNDLE [ENV...]
  local name=$1 minutes=$2 workers=$3 b=$4 before after smi; shift 4
  before=$(cpu_times)
  nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 500 >"$out/$name.gpu" 2>/dev/null &
  smi=$!
  env "$@" python3 -m lora_verify fuzz --minutes "$minutes" -n "$workers" --bundle "$b" --round-s 30 \
    --case-dir "$out/cases_$name" --report "$out/$name.json" --log "$out/rounds_$name.log" >"$out/$name.log" 2>&1
  kill "$smi" 2>/dev/null; after=$(cpu_times)
  echo "== $name: $(tr '\r' '\n' <"$out/$name.log" | grep -E 'batches in' | tail -1)"
  # the box's load: CPU busy over all cores (start-up included), GPU busy (nvidia-smi's utilization, mean of samples)
  echo "   load: CPU $(echo "$before $after" | awk '{b=$3-$1; i=$4-$2; printf "%.0f", 100*b/(b+i)}')% busy," \
    "GPU $(awk '{s+=$1; n++} END {printf "%.0f", n ? s/n : -1}' "$out/$name.gpu")% busy"
  tr '\r' '\n' <"$out/$name.log" | grep -E 'FAIL|^case' | head -5 || true  # none: no failure
}
warm=${WARMUP_MIN:-1.0}; box=${BOX_MIN:-0.6}; runs=" ${RUNS-one_worker n_workers n_workers_bundle loops} "
fuzz warmup "$warm" "$n" "$bundle"
[[ "$runs" != *" one_worker "* ]] || fuzz one_worker "$box" 1 1
[[ "$runs" != *" n_workers "* ]] || fuzz n_workers "$box" "$n" 1
[[ "$runs" != *" n_workers_bundle "* ]] || fuzz n_workers_bundle "$box" "$n" "$bundle"
if [[ "$runs" == *" loops "* ]] && grep -q "reference on the GPU: reference" "$out/setup.txt"; then
  fuzz n_workers_bundle_loops "$box" "$n" "$bundle" LORA_DEVICE_REFERENCE=
fi
if [[ "$runs" == *" device "* ]] && grep -q "reference on the GPU: reference" "$out/setup.txt"; then
  fuzz n_workers_bundle_device "$box" "$n" "$bundle" LORA_DEVICE_REFERENCE_MIN_PRODUCTS=0
fi
for spec in ${SWEEP:-}; do
  fuzz "w${spec%:*}_b${spec#*:}" "$box" "${spec%:*}" "${spec#*:}"
done

#!/usr/bin/env bash
# Fuzzing over every GPU of the host, against one GPU, and a planted bug found once (GPU machines only).
#
#   tests/fuzz_gpus.sh OUTDIR [MINUTES] [MUTANT]
#
# 1. Throughput: the same time-boxed fuzz run (tests/fuzz.py, fuzz profile) with one worker on one GPU,
#    two workers on that one GPU, and one worker per GPU on all of them; each prints its workers' devices
#    and its checked batches per second (OUTDIR/fuzz_*.log, .json).
# 2. A copy of the tree with MUTANT (tests/mutants.py) planted, fuzzed on all GPUs in short rounds that
#    share one example database: the bug is found, and each failing test is saved as one case file.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: tests/fuzz_gpus.sh OUTDIR [MINUTES] [MUTANT]}; minutes=${2:-1.5}; mutant=${3:-shrink_load_unpermuted}
mkdir -p "$out"; out=$(realpath "$out")
gpus=$(python3 -c "import torch; print(torch.cuda.device_count())")
all=$(seq -s, 0 $((gpus - 1)))
tests=(-p no:benchmark tests/test_properties.py tests/test_routing.py)
work=$(mktemp -d)
# Compile every kernel variant once, so that no timed run pays another's Triton compiles.
HYPOTHESIS_PROFILE=dev python3 -m pytest -q -n "$gpus" "${tests[@]}" >"$out/warmup.log" 2>&1
fuzz() {  # NAME VISIBLE_GPUS WORKERS [EXTRA ENV]
  local name=$1 visible=$2 workers=$3; shift 3
  env CUDA_VISIBLE_DEVICES="$visible" LORA_FUZZ_DB="$work/db_$name" "$@" python3 -m tests.fuzz \
    --minutes "$minutes" -n "$workers" --case-dir "$out/cases_$name" --report "$out/fuzz_$name.json" \
    --log "$out/rounds_$name.log" -- "${tests[@]}" >"$out/fuzz_$name.log" 2>&1
  tr "\r" "\n" <"$out/fuzz_$name.log" | grep -E "FAIL$|^worker|^case|failing properties;"
}
echo "== one worker, one GPU";   fuzz 1gpu_1worker 0 1
echo "== two workers, one GPU";  fuzz 1gpu_2workers 0 2
echo "== one worker per GPU ($gpus)"; fuzz "${gpus}gpu_${gpus}workers" "$all" "$gpus"
echo "== planted: $mutant"
cp -r . "$work/planted" && rm -rf "$work/planted/.hypothesis"
(cd "$work/planted" && python3 -c "
from pathlib import Path; from lora_verify.mutants import BY_NAME; BY_NAME['$mutant'].apply(Path('.'))" &&
  env CUDA_VISIBLE_DEVICES="$all" LORA_FUZZ_EXAMPLES=40 python3 -m tests.fuzz --minutes "$minutes" -n "$gpus" \
    --case-dir "$out/cases_planted" --report "$out/fuzz_planted.json" --log "$out/rounds_planted.log" \
    -- "${tests[@]}" >"$out/fuzz_planted.log" 2>&1)
grep -E "^(worker|case)|failing properties;" "$out/fuzz_planted.log"
grep -E "^(====|FAILED)" "$out/rounds_planted.log"
echo "example database entries (one directory, shared by every worker and round): \
$(find "$work/planted/.hypothesis/fuzz" -type f | wc -l)"

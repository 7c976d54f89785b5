#!/usr/bin/env bash
# The sglang release matrix compiled on a GPU machine (the H200): the releases' kernel files carried in
# .carry/sglang/<version>/sglang/... (kernel files, srt/lora/utils.py, the version file: nothing installed),
# then unmodified 0.5.23 at the gpu profile. Usage, from the repository root:
#
#   scripts/matrix_gpu.sh OUTDIR [VERSION ...]      # default: the CPU matrix's releases (docs/releases/)
#   STEPS="matrix gpu offsets replay" (the default: all four, about 5-8 + 3 + 2 + 3 minutes); PROFILE (ci),
#   ROWS (4 at a time), WORKERS (4 xdist workers a row) for step 1
#
# 1. lora-verify matrix, ci profile (PROFILE=gpu: the gpu profile; graph replay included: it needs CUDA), rows 4 at a time with 4 xdist workers
#    each (16 cores; Triton compiles each kernel generation once into its on-disk cache), at most ROW_TIMEOUT s
#    a row: OUTDIR/matrix/{matrix.md,matrix.json,<row>/log.txt,<row>/failures/} (matrix.png where matplotlib is).
# 2. 0.5.23 alone at the gpu profile (1,000 examples a property), 16 workers: OUTDIR/sglang-0.5.23-gpu.{log,json}
#    and its failing cases in OUTDIR/sglang-0.5.23-gpu-failures/.
# 3. Rows past 2^31 elements (lora_verify/suite/test_large_offsets.py, 4 GiB tensors) on 0.5.10 (row offsets in
#    int32) and 0.5.11 (int64), per-sequence, one process per operation (a faulting kernel poisons its CUDA
#    context): OUTDIR/large-offsets-<version>-<op>.log.
# 4. Each closeness case the CPU matrix saved (docs/releases/cpu/sglang-<v>/failures/), replayed compiled with
#    that release: every property on the same batch, graph replay included, and its minimised batch:
#    OUTDIR/replay/<v>-<case>.log (the CPU and GPU verdicts of one batch, side by side with the CPU's case).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/matrix_gpu.sh OUTDIR [VERSION ...]}; shift
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(0.4.8 0.4.10 0.5.1 0.5.4 0.5.8 0.5.9 0.5.10 0.5.11 0.5.16 0.5.21 0.5.22 0.5.23)
mkdir -p "$out"; out=$(realpath "$out")
dirs=()
for v in "${versions[@]}"; do
  [ -d ".carry/sglang/$v/sglang" ] || { echo "missing .carry/sglang/$v/sglang: carry it" >&2; exit 2; }
  dirs+=(".carry/sglang/$v")
done
steps=" ${STEPS:-matrix gpu offsets replay} "
step() { [[ "$steps" == *" $1 "* ]]; }
if step matrix; then
start=$(date +%s)
python3 -m lora_verify matrix --sglang-release "${dirs[@]}" --out "$out/matrix" --profile "${PROFILE:-ci}" -n "${WORKERS:-4}" -j "${ROWS:-4}" \
  --timeout "${ROW_TIMEOUT:-240}" --title "sglang releases: property verdicts (compiled, ${PROFILE:-ci} profile)" \
  >"$out/matrix.log" 2>&1
echo "matrix: exit $? after $(( $(date +%s) - start )) s"; sed -n '/^row /,$p' "$out/matrix.log"
fi
if step gpu; then
start=$(date +%s)
timeout 300 python3 -m lora_verify run --impl lora_verify.adapters.sglang --sglang .carry/sglang/0.5.23 -n 16 \
  --profile gpu --verdicts-json "$out/sglang-0.5.23-gpu.json" --case-dir "$out/sglang-0.5.23-gpu-failures" \
  >"$out/sglang-0.5.23-gpu.log" 2>&1
echo "0.5.23, gpu profile: exit $? after $(( $(date +%s) - start )) s"; tail -3 "$out/sglang-0.5.23-gpu.log"
fi
if step offsets; then
for v in 0.5.10 0.5.11; do
  for op in $(python3 -c 'from lora_verify.ops import OPS; print(*(op.name for op in OPS))'); do
    timeout 120 python3 -m pytest -q --impl lora_verify.adapters.sglang --sglang ".carry/sglang/$v" \
      --pyargs lora_verify.suite.test_large_offsets -k "$op and unsorted" >"$out/large-offsets-$v-$op.log" 2>&1
    echo "large offsets, $v, $op: exit $?"; tail -1 "$out/large-offsets-$v-$op.log"
  done
done
fi
if step replay; then
mkdir -p "$out/replay"
for case in docs/releases/cpu/sglang-*/failures/*close_to_reference.json; do
  v=$(basename "$(dirname "$(dirname "$case")")"); v=${v#sglang-}
  [ -d ".carry/sglang/$v/sglang" ] || continue
  log="$out/replay/$v-$(basename "$case" .json).log"
  LORA_SGLANG=".carry/sglang/$v/sglang" timeout 90 python3 -m lora_verify replay "$case" \
    --impl lora_verify.adapters.sglang >"$log" 2>&1
  echo "replay $v $(basename "$case"): exit $? ($(grep -c '^  FAIL' "$log") failing checks)"
done
fi

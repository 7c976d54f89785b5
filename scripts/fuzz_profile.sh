#!/usr/bin/env bash
# Where a fuzzing worker's host time goes: one pytest process (no xdist) runs one property test under the fuzz
# profile with cProfile, and the functions of this repository (and torch's and hypothesis' entry points) are
# listed by cumulative time. Run it on a warm Triton cache (after scripts/fuzz_throughput.sh or a suite run,
# with the same TRITON_CACHE_DIR) so that compiles do not hide the host's own costs.
#
#   scripts/fuzz_profile.sh OUTDIR [EXAMPLES] [BUNDLE] [-k EXPR]   (defaults: 200 examples, bundles of 8,
#                                                                   plain expand's closeness, unsorted)
# Out: OUTDIR/profile.prof (pstats), OUTDIR/profile.txt (the listing), OUTDIR/profile.log (pytest's output).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/fuzz_profile.sh OUTDIR [EXAMPLES] [BUNDLE] [-k EXPR]}
examples=${2:-200}; bundle=${3:-8}; shift $(($# < 3 ? $# : 3))
[ $# -gt 0 ] || set -- -k "sgemm_lora_b_fwd and close_to_reference and unsorted"
mkdir -p "$out"; out=$(realpath "$out")
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
HYPOTHESIS_PROFILE=fuzz LORA_FUZZ_EXAMPLES=$examples LORA_BUNDLE=$bundle LORA_FUZZ_DB=$(mktemp -d)/db \
  python3 -m cProfile -o "$out/profile.prof" -m pytest -q -p no:xdist -p no:randomly -p no:cacheprovider \
  lora_verify/suite/test_properties.py "$@" >"$out/profile.log" 2>&1
echo "pytest exit $?; $(grep -E ' passed| failed' "$out/profile.log" | tail -1)"
python3 - "$out/profile.prof" <<'PY' | tee "$out/profile.txt"
import io, pstats, sys
s = io.StringIO()
pstats.Stats(sys.argv[1], stream=s).sort_stats("cumulative").print_stats(4000)
lines = s.getvalue().splitlines()
print("\n".join(lines[:12]))
keep = ("lora_verify/", "reference/", "impl/", "hypothesis/core.py", "conjecture/data.py(draw)", "triton/runtime/jit.py",
        "torch/cuda/__init__.py(synchronize)", "(item)", "(tolist)", "(cpu)", "(to)")
print("\n".join([line for line in lines[12:] if any(k in line for k in keep) and "interpreter" not in line][:80]))
PY

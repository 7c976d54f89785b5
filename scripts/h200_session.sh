#!/usr/bin/env bash
# One device session's GPU work, in phases that each fit one 10-minute call (the device tool's limit), from the
# repository root with .carry (the releases' and peers' kernel files; scripts/carry.sh fills it) carried:
#
#   scripts/h200_session.sh PHASE OUTDIR
#
# smoke  (~3 min)  every tool once, compiled, small: the suite at the dev profile (-x), one matrix row, the
#                  peers' fixed batches, the benchmark's tiny dry run, 20 s of fuzzing, two generated mutants.
# a      (~9 min)  GPU 0: the sglang release matrix (scripts/matrix_gpu.sh, ci profile), then 0.5.23 at the gpu
#                  profile; GPU 1: rows past 2^31 elements on 0.5.10/0.5.11, then our whole suite at the gpu
#                  profile (real layer shapes included).
# b      (~9 min)  GPU 0: the benchmark's full grid against every peer; GPU 1: fuzzing throughput, then each
#                  peer at the gpu profile (scripts/peers_gpu.sh) while the call has time.
# c      (~9 min)  GPU 0: sglang 0.5.23 at the gpu profile, then the peers' fixed batches; GPU 1: fuzzing
#                  throughput, then our suite at the ci profile (test names as they end: -v).
# verdicts (~9 min; written for 4 GPUs, 64 cores, and runs on fewer): GPUs 0-1: sglang 0.5.23 at the gpu profile;
#                  GPU 2: csgmv and triton_v2 at the gpu profile; GPU 3: vLLM (both modes) at the gpu profile, the
#                  0.5.10 matrix row (ci profile), then the planted crash and hang fuzzed (scripts/fuzz_faults.sh).
#                  Each run is stopped with SIGINT at its limit, so that pytest still prints what it found.
# final    (~9 min, 4 GPUs): GPU 0: where a property test's time goes at the gpu profile (single processes with
#                  hypothesis' statistics and a traceback dump after 90 s: sglang 0.5.23, vLLM batch-invariant,
#                  ours); GPUs 1-2: the generated mutants the CPU ran, compiled, strays' survivors under memcheck;
#                  GPU 3: the benchmark's full grid against every peer.
# props    (~6 min, 4 GPUs): the property tests alone (lora_verify/suite/test_properties.py), a worker each, one
#                  thread each (OMP_NUM_THREADS=1): sglang 0.5.23 on GPUs 0-1, csgmv on GPUs 2-3, gpu profile.
# gpu      (~9.5 min, 4 GPUs; what the issues still need at the gpu profile): GPU 0: our whole suite, timed
#                  (scripts/gpu_suite.sh, 15 workers: issue 21's 5 minutes on one H200); GPU 1: csgmv's, then
#                  triton_v2's whole suite; GPU 2: vLLM batch-invariant's, then vLLM's; GPU 3: every generated
#                  mutant compiled (memcheck for strays), then the planted faults fuzzed over shrink's and expand's
#                  tests.
# matrix   (~9.5 min, 4 GPUs): the release matrix at the gpu profile, 8 rows at a time, 7 workers each, on all GPUs.
# routing  (~6 min, 4 GPUs; .carry/routing_tree = `git archive routing-one-launch` without docs/ and
#                  benchmarks/results/): GPU 0: the branch's one-launch routing against this tree's, timed side
#                  by side and compared bit for bit on every batch of the full grid (benchmarks/compare.py
#                  --routing); GPUs 1-3: the branch's whole suite compiled, ci profile (what merging it needs).
#                  Not run: the branch was merged after x2a timed it against .carry/main_tree instead.
# x2a, x2b, x2c (~9.5 min each, 2 GPUs, 32 cores: the machine lent when the 4-GPU one is not; each GPU with its
#                  half of the cores, as one H200 machine): x2a: GPU 0 our whole suite at the gpu profile, timed
#                  (issue 21's 5 minutes on one H200), then this tree's routing against .carry/main_tree's (the
#                  routing before the one-launch merge: `git archive d3b3014 impl`), full grid; GPU 1 triton_v2's
#                  and vLLM batch-invariant's whole suites. x2b: GPU 0 csgmv's and vLLM's whole suites; GPU 1 the
#                  release matrix at the gpu profile, first four rows (distinct kernel files), two at a time. x2c:
#                  both GPUs, the other eight rows, four at a time. Each row stops at 270 s (SIGINT: its verdicts are
#                  of the tests that ended); the matrices are joined afterwards (matrix --render).
# x2d (~7 min, 2 GPUs): what x2a-x2c left: the matrix rows stopped there (0.5.11, 0.5.22 first, then 0.5.16, 0.5.23;
#                  12 workers a row, 200 s each); csgmv's graph replay tests again (its adapter's translation kept
#                  alive: lora_verify.adapters.batch.Kept); our shrink's sorted == unsorted, the test x2a stopped.
# x2e, x2f, x2g (~9.5 min each, 2 GPUs; what issues 20-21 still need, in three calls made back to back so that
#                  each finds the last one's .out/ (Triton cache, test durations, mutant verdicts), kept while the
#                  machine is held): x2e: GPU 0 our whole suite at the gpu profile into a cold cache and no
#                  durations, timed, stopped at 540 s; GPU 1 the generated mutants compiled (expected survivors
#                  first), memcheck for strays, 380 s of starts. x2f: GPU 0 the same suite on the warm cache,
#                  longest tests first from x2e's durations (the 5 minutes of issue 21); GPU 1 fuzzing throughput,
#                  boxes of 1.5 minutes (one worker; N with bundles; N with the loop reference). x2g: the generated
#                  mutants x2e did not end, both GPUs; the planted faults fuzzed over shrink's tests.
# x2h (~9.5 min, 2 GPUs; for the next session): GPU 0 fuzzing rates by workers (4, 8, 15) and bundle size (8,
#                  32), one-minute boxes on a warm cache, then one worker under cProfile (issue 21's 500/s); GPU 1 the
#                  generated mutants docs/mutants_generated_gpu.json lacks. mutants (~9.5 min, any machine): those
#                  mutants on every GPU and core; repeat it (after copying OUTDIR's json back) until none is left.
#                  An expected survivor runs its whole selection compiled: about 850 core-seconds of compiles, more
#                  than one process gets in a call, so each runs on 4 xdist workers (--survivor-workers).
# h1 (~9.5 min, one GPU and 16 cores): fuzzing rates by workers (4, 8, 15) and bundle size (8, 32), with the
#                  cores' and the GPU's load per box; then one worker profiled among 14 fuzzing workers and alone.
# h2 (~9.5 min), h3 (~5 min), one GPU: h2 our whole suite at the gpu profile, cold cache, no durations, timed, then
#                  fuzzing (15 workers, bundles of 8); h3 fuzzing with 15 workers, bundles of 8: the reference as
#                  chosen (loops below 2^25 products), then the device reference for every case, side by side.
# h5 (~6 min, one GPU; .carry/main_tree = `git archive 6b651c6 impl`, the kernels before the sixth session): this
#                  tree's two-launch routing against the one-launch one, every batch of the full grid, bit for bit
#                  (benchmarks/compare.py --routing); then the shrinks (the grouped loop no longer unrolled),
#                  decode shapes of the small grid, both layouts.
# h6 (~9.5 min, one GPU): h5's comparisons again on this tree (the routing of one chunk in one launch, the grouped
#                  shrink's table loads before its loop), then h2 on it: our whole suite at the gpu profile, cold
#                  cache, no durations, stopped at 570 s of the phase.
# h7 (~9.5 min, one GPU, on h6's warm cache): the fuzzing rate (15 workers, bundles of 8, a one-minute box), then
#                  routing's generated mutants compiled (memcheck for strays) while the call has time.
# h8 (~9.5 min, one GPU; run from branch candidate/speed, merged since; .carry/main_tree = main's impl): the branch's
#                  shrinks (splits summed in the program on grids of many row programs and output tiles) against
#                  main's, side by side, every shape of the full grid's 8B layer, both layouts; then h9's cold suite
#                  on the branch in the time left. down_proj's outputs may differ from main's in the last bit: the
#                  branch adds the partials left to right, main with tl.sum (the suite checks the branch's bits
#                  against its own layouts and the reference). The first h8 (docs/experiments/
#                  compare_candidate_h100.txt) also timed expand's grouped rows: dropped, slower.
#                  With 100 s left after the suite: the shrink launched with 8 warps against 4 on this tree
#                  (ninth session: slower; docs/results/h100x1/README.md).
# h8s (one GPU, for a call with less time): h8 the other way round, the shrinks' part of the cold suite first
#                  (GPU_SUITE_K=lora_a), then the comparison if 150 s are left. H8_S: either's seconds (575).
# h9 (~9.5 min, one GPU): h6's cold suite on this tree (what merging a kernel edit needs). H9_S: its seconds (570).
# h10 (~9.5 min, one GPU): the benchmark's full grid against every peer (.carry/vllm and .carry/sglang/0.5.23
#                  carried), on this tree's kernels: issue 22's per-shape table.
# h11 (~9.5 min, one GPU; for a session that may get one call): h10 stopped at 330 s (its budget 240 s; the H200
#                  ran the whole grid in 204 s), then the generated mutants not argued equivalent that
#                  docs/mutants_generated_gpu.json lacks, compiled, on every core, in the time left.
# h12 (~9.5 min, one GPU; a session's first call): on an H200, h10's grid (330 s), then h9's cold suite in the time
#                  left; on another card (whose grid is timed already), the cold suite (330 s), then h11's mutants.
# h13 (~9.5 min, one GPU; a session's first call): on an H200, h12's; on another card, the memcheck layer first
#                  (tests/test_tight.py compiled: a planted stray must be reported with lora_verify/tight.py's
#                  copies and not without; then the unmutated tree's memcheck tier, as the runner runs it: any
#                  report there would make memcheck's kills mean nothing), then the generated mutants
#                  the GPU's record lacks or gives another verdict than the CPU's (mutants_gpu), in the time left.
# h14 (~9.5 min, one GPU): where our shrink loses to sglang's unsorted one (the bandwidth-bound shapes of the H100's
#                  grid, and three it wins, as a guard), its constants timed with sglang beside them in one process
#                  (benchmarks/tune.py, 8b shrink and down_proj): GROUP x NUM_STAGES (200 s), then BLOCK_K_LONG x
#                  K_BLOCKS_PER_SPLIT (150 s); then expand's candidates never run (MIN_PROGRAMS x NUM_STAGES x
#                  NUM_WARPS) over the decode grid, in the time left.
# h15 and h16 ran from branch candidate/stages (merged in the fourteenth session).
# h15 (~7 min, one GPU): the shrink's deeper pipeline on large batches (STAGES_MIN_ROWS) and its column tile
#                  (BLOCK_N_MAX): same bits under each candidate (benchmarks/same_bits.py, prefill shapes and the
#                  decode shapes it loses), then each timed with sglang beside it (benchmarks/tune.py: 8b prefill,
#                  70b prefill, 8b decode where it loses), then the suite's grouped sorted == unsorted and
#                  batch-invariance compiled (the grouped variant takes the deeper pipeline on every batch).
# h16 (~3 min, one GPU): h15's choice as committed (STAGES_MIN_ROWS with STAGES_MAX_N): same bits, then timed against
#                  the old launch with sglang beside it (8b and 70b prefill), then h15's suite tests again.
# h17 (~6 min, one GPU): expand's wide row tiles (WIDE_ROWS rows a program on large sorted batches of long segments):
#                  same bits under each candidate (8b, the shapes timed), then timed: one-adapter shapes with cuBLAS
#                  beside them, large batches of several adapters with sglang (h18 then runs the suite on the choice).
# h18 (~9.5 min, one GPU, right after h17): the final kernels: with H18_WIDE (the values of impl/expand.py's WIDE_*
#                  line, e.g. "64, 256, 64, 4", as h17 chose them; to be committed as run) that line is set first;
#                  then h9's cold suite (H18_S s, 300), then h10's full grid in the time left.
# h19-h22 run from branch candidate/wide-columns (its impl/expand.py has the WIDE_* constants they set).
# h19 (~8 min, one GPU): expand's wide launch, its column rule (WIDE_MIN_PROGRAMS x WIDE_STAGES x WIDE_BLOCK_N) timed
#                  with cuBLAS beside the one-adapter shapes and sglang beside the others, qkv wide too (WIDE_QKV=1);
#                  expand with its base loaded before the dot (a copy of impl/ in .out/early) against this tree
#                  (benchmarks/compare.py); the shrink's column tile and split (BLOCK_N_MAX x K_BLOCKS_PER_SPLIT) on
#                  one-adapter shapes with cuBLAS beside them.
# h20 (~3 min, one GPU, after h19): the wide launch's warps and wider column tiles (WIDE_WARPS x WIDE_BLOCK_N x
#                  WIDE_MIN_PROGRAMS x WIDE_STAGES), qkv wide against narrow at the column tile of 128 (WIDE_QKV x
#                  W_BLOCK_ELEMENTS), and the narrow launch's column tile at rank 128 (W_BLOCK_ELEMENTS), timed.
# h21 (~9.5 min, one GPU): the final kernels: same bits with the wide column tile and without (8b, the shapes h19
#                  timed), h9's cold suite (H21_S, 480 s: the branch's took over 335 s in h22), then h10's full
#                  grid in the time left.
# h22 (~9.5 min, one GPU; from the branch too): h21's same bits and cold suite (H22_S, 330 s), then the shrink's
#                  fusion rule and table grouping (FUSE_MIN_PROGRAMS x FUSE_MIN_TILES x GROUP_MIN_ROWS) timed on the
#                  shapes where they decide otherwise, 8B and 70B, cuBLAS beside the one-adapter shapes.
# h23 (~5 min, one GPU): the shrink's split length (K_BLOCKS_PER_SPLIT 4, 8, 16: a function of K alone, so every
#                  batch keeps one sum order) on every shrink shape of the full grid, 8B then 70B, both layouts,
#                  sglang beside: fewer, longer splits halve the partials' traffic where sums are not fused. Ran
#                  before a824bc7; since then K_BLOCKS_PER_SPLIT sets K up to LONG_SPLIT_K only, and
#                  K_BLOCKS_PER_LONG_SPLIT the K past it.
# h24 (~6 min, one GPU; from branch candidate/shrink-splits, merged): the shrink's and real shapes' part of the suite
#                  (cold, H24_S s, 200), same bits over the grouped shrink's GROUP x GROUP_BLOCK_N x GROUP_WARPS (and
#                  grouping on or off; those knobs exist in a824bc7's impl/ only, removed after), those timed where
#                  grouping applies, then the 70B gate_up_expand rows of
#                  the full grid that h21's budget left.
# h25 (~3.5 min, one GPU): the final kernels' shrinks past K = 4096 (70B's four, 8B's down_proj) on the full grid,
#                  every peer beside: the grid rows h21 timed before the split length changed (H25_S s, 200).
# h27 (~9.5 min, one GPU), in tree H27_TREE (default this one; .carry/branch_full holds a branch's, scripts/carry.sh):
#                  our whole suite, cold (H27_S s, 300), then, on the 8B one-adapter shapes with cuBLAS beside, the
#                  split shrink's second launch (benchmarks/split_sum.py), the shrink's tiles (GROUP 4 or 8 x
#                  BLOCK_N_MAX 64 or 128 x NUM_WARPS 4 or 8) and K block (BLOCK_K_LONG 64 or 128 x K_BLOCKS_PER_SPLIT
#                  4 or 8).
# h28 (~9.5 min, one GPU; .carry/branch_tree = `git archive BRANCH impl`, scripts/carry.sh): a branch's shrinks
#                  against main's side by side (full grid, both layers; nineteenth session candidate/two-level-sums,
#                  twentieth candidate/single-launch-shrink), then the whole suite, cold, in the time left, in tree
#                  H28_TREE (default this one; .carry/branch_full: the branch's).
# h29 (~5 min, one GPU): Nsight Compute on the one-adapter shapes cuBLAS wins by most (8B), our sorted launches and
#                  cuBLAS's kernels side by side (benchmarks/ncu_case.py: duration, DRAM / memory / SM throughput,
#                  registers, occupancy); a table per shape, the raw CSV beside it. Each shape stops at H29_EACH s (90).
# h30 (~7 min, one GPU; .carry/branch_tree: candidate/qkv-vectors, .carry/variant_tree: the same but every qkv slice
#                  taken as aligned, wrong on unaligned offsets, timed only): qkv expand with its aligned slices' output
#                  in vectors against main's (full grid, both layers, every shape), against the variant (what the
#                  unaligned fallback's registers cost), then expand's wide launch from 64 rows (WIDE_MIN_ROWS 64,
#                  three expands, 8B decode), then ncu on qkv expand 1024/1/128 as h29.
# h31 (~9.5 min, one GPU): the final kernels (qkv's vectors): qkv expand against main's (both layers, every shape,
#                  H31_CMP s each, 0: not run), h9's cold suite (H31_S s, 330), then the full grid's qkv expand (both
#                  layers) against every peer, cuBLAS beside the one-adapter shapes, in the time left.
# h32 (~7 min, one GPU; .carry/branch_tree: `git archive 49e27c5 impl`, qkv's vectors before the rule): expand's wide
#                  launch from 64 rows where the output has WIDE_MIN_COLUMN_TILES wide column tiles (this tree) against
#                  it, the three expands, both layers, decode shapes; then h9's cold suite (H32_S s, 300).
# Each phase ends with OUTDIR/<phase>-all.tar.gz (every log and result; the device tool returns 8 files at most)
# and OUTDIR/<phase>.txt (the summary lines).
set -uo pipefail
cd "$(dirname "$0")/.."
phase=${1:?usage: scripts/h200_session.sh smoke|a|b OUTDIR}; out=${2:?OUTDIR}
mkdir -p "$out/$phase"; out=$(realpath "$out"); res="$out/$phase"
export PYTHONPATH=$PWD/.carry/sglang/0.5.23 LORA_SGLANG_PEERS=$PWD/.carry/sglang/0.5.23 LORA_VLLM=$PWD/.carry/vllm
gpus=$(nvidia-smi -L | wc -l); cores=$(nproc)
half=$((gpus > 1 ? cores / 2 : cores))
first="0-$((half - 1))"; second="$half-$((cores - 1))"; [ "$gpus" -gt 1 ] || second=$first
on() {  # GPU CORES CMD...: one GPU and a share of the cores
  local gpu=$1 cpus=$2; shift 2
  CUDA_VISIBLE_DEVICES=$gpu taskset -c "$cpus" "$@"
}
gpu() { echo $(($1 < gpus ? $1 : gpus - 1)); }  # GPU i, or the last one on a smaller machine
quarter() { local q=$((cores / 4)); echo "$(($1 * q))-$((($1 + ${2:-1}) * q - 1))"; }  # cores of quarter i (n quarters)
stop="timeout -s INT -k 30"  # pytest prints its verdicts on SIGINT: $stop LIMIT CMD
say() { echo "$(date +%T) $*" | tee -a "$out/$phase.txt"; }
kernels_compare() {  # LIMIT NAME ARGS...: benchmarks/compare.py on the full grid, its geomeans in the summary
  local limit=$1 name=$2; shift 2
  timeout "$limit" python3 -m benchmarks.compare "$@" --grid full --rep 10 >"$res/compare_$name.log" 2>&1
  say "compare $name: exit $?"; grep geomean "$res/compare_$name.log" | tee -a "$out/$phase.txt"
}
ncu_profile() {  # LIMIT NAME ARGS...: Nsight Compute on benchmarks/ncu_case.py ARGS, its CSV and table in $res
  local limit=$1 name=$2; shift 2
  timeout "$limit" ncu --clock-control none --profile-from-start off --csv --page details --section SpeedOfLight \
    --section LaunchStats --section Occupancy python3 -m benchmarks.ncu_case "$@" >"$res/ncu_$name.csv" \
    2>"$res/ncu_$name.log"
  say "ncu $name: exit $?"
  python3 -m benchmarks.ncu_case --table "$res/ncu_$name.csv" >"$res/ncu_$name.md" 2>>"$res/ncu_$name.log"
  tee -a "$out/$phase.txt" <"$res/ncu_$name.md"
}
tune() {  # LIMIT NAME ARGS...: benchmarks/tune.py, stopped at LIMIT s (its rows are written as they end)
  local limit=$1 name=$2; shift 2
  LORA_SGLANG=$LORA_SGLANG_PEERS timeout "$limit" python3 -m benchmarks.tune --out "$res/tune_$name.md" "$@" \
    >"$res/tune_$name.log" 2>&1
  say "tune $name: exit $?"; grep -E "^\| [a-z]|failed|skipped" "$res/tune_$name.md" | cut -d'|' -f2-6 \
    | tee -a "$out/$phase.txt"
}
# the commit alone may not name the tree that ran (a device copy's HEAD was seen to lag): impl/'s own hash too
impl_of() { find impl -name '*.py' | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12; }  # this folder's
impl_hash=$(impl_of)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
say "phase $phase: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1) x$gpus, $cores cores, commit $commit, impl/ $impl_hash"
python3 -c "import torch, triton, hypothesis; print('torch', torch.__version__, 'triton', triton.__version__, 'hypothesis', hypothesis.__version__)" | tee -a "$out/$phase.txt"

cold_suite() {  # LIMIT: our whole suite at the gpu profile, 15 workers, into a cold Triton cache and no durations
  export TRITON_CACHE_DIR=$PWD/.out/triton-cache; rm -rf "$TRITON_CACHE_DIR" .out/durations.json
  LORA_SGLANG=$LORA_SGLANG_PEERS $stop "$1" scripts/gpu_suite.sh "$res/suite" 15 >"$res/gpu_suite.log" 2>&1
  say "our suite, gpu profile, cold cache, no durations: exit $?; $(cat "$res/suite/time.txt" 2>/dev/null)"
  grep -E "passed|failed|Triton compiles|INTERRUPTED" "$res/suite/gpu_suite.log" | tail -4 | tee -a "$out/$phase.txt"
  cp .out/durations.json "$res/durations.json"
}
wide_columns_same_bits() {  # h21, h22 (branch candidate/wide-columns): same bits with the wide column tile and without,
  # qkv wide and narrow (8b, the expands, the shapes h19 timed)
  timeout 60 python3 -m benchmarks.same_bits --ops expand,qkv_expand,gate_up_expand --phase all \
    --shapes 256/1/128,1024/1/128,1024/8/128,p64x128/64/128,1024/1/64,p1x2048/1/64 \
    --set impl.expand.WIDE_BLOCK_N=0,128 --set impl.expand.WIDE_QKV_MIN_RANK=128,1024 >"$res/same_bits.log" 2>&1
  say "same bits, WIDE_BLOCK_N x WIDE_QKV_MIN_RANK (8b, expands): exit $? $(tail -1 "$res/same_bits.log")"
}
bench_full() {  # LIMIT: the benchmark's full grid against every peer (H10_LAYERS: --layers), stopped at LIMIT s
  LORA_SGLANG=$LORA_SGLANG_PEERS timeout "$1" python3 -m lora_verify bench --grid full --rep 2 --compile-jobs 15 \
    ${H10_LAYERS:+--layers "$H10_LAYERS"} --budget-s $(($1 - 90)) --out "$res/bench" >"$res/bench.log" 2>&1
  say "bench full: exit $?"; tail -5 "$res/bench.log" >>"$out/$phase.txt"
}
mutants_gpu() {  # GPUS FIRST_CORE LAST_CORE [LIMIT] [others]: the generated mutants docs/mutants_generated_gpu.json
  # lacks or gives another verdict than the CPU's (a disagreement runs again until it is closed), compiled (memcheck
  # for strays), stopped at LIMIT seconds (560), in two runs side by side: the expected survivors (the control
  # among them), each on 4 xdist workers, on the cores the others leave (all when no other is left); the others,
  # one process each, a core each (8 at most, their control counted; on every core when no expected survivor is
  # left or with "others", which runs the others alone).
  # Out: $res/mutants_gpu.json (the file's verdicts and the new ones: copy it back to docs/)
  local gpus=$1 lo=$2 hi=$3 limit=${4:-560} only=${5:-} eq rest
  read -r eq rest < <(python3 -c "import json; from pathlib import Path; from lora_verify import generated
def verdicts(f): return {m['name']: m['killed'] for m in json.loads(Path(f).read_text())['mutants']}
cpu, gpu = verdicts('docs/mutants_generated_cpu.json'), verdicts('docs/mutants_generated_gpu.json')
left = [m for m in generated.generate(Path('.')) if m.name not in gpu or gpu[m.name] != cpu.get(m.name)]
print(','.join(m.name for m in left if m.equivalent) or '-', ','.join(m.name for m in left if not m.equivalent) or '-')")
  run_part() {  # NAME CORES JOBS SURVIVOR_WORKERS NAMES
    [ "$5" != - ] || return 0
    CUDA_VISIBLE_DEVICES=$gpus taskset -c "$2" timeout -s INT -k 20 "$limit" python3 -m lora_verify mutants \
      --generated --only ${5//,/ } --compiled --memcheck --parallel-sanity --budget $((limit * 3 / 4)) -j "$3" \
      --survivor-workers "$4" \
      --cpu-json docs/mutants_generated_cpu.json --json "$res/mutants_$1.json" >"$res/mutants_$1.log" 2>&1
    say "generated mutants, compiled ($1: GPUs $gpus, cores $2, -j $3): exit $? $(grep -E 'kill rate' "$res/mutants_$1.log")"
  }
  if [ "$only" = others ] || [ "$eq" = - ]; then  # the others alone: every core theirs
    run_part others "$lo-$hi" $((hi - lo)) 1 "$rest"
  elif [ "$rest" = - ]; then  # only expected survivors left: every core theirs
    run_part expected "$lo-$hi" $(((hi + 1 - lo) / 4)) 4 "$eq"
  else  # the others (and their control) a core each, 8 at most; the expected survivors the rest
    local n; n=$(echo "$rest" | tr , '\n' | wc -l); n=$((n + 1 < 8 ? n + 1 : 8))
    run_part expected "$lo-$((hi - n))" $(((hi + 1 - n - lo) / 4)) 4 "$eq" &
    run_part others "$((hi + 1 - n))-$hi" "$n" 1 "$rest" &
    wait
  fi
  python3 -c "import json, sys; from pathlib import Path
record = json.loads(Path('docs/mutants_generated_gpu.json').read_text())
mutants = {m['name']: m for m in record['mutants']}
for part in sys.argv[1:]:
    if Path(part).exists():
        mutants.update((m['name'], m) for m in json.loads(Path(part).read_text())['mutants'])
record['mutants'] = list(mutants.values())
print(json.dumps(record, indent=1))" "$res/mutants_expected.json" "$res/mutants_others.json" >"$res/mutants_gpu.json"
  python3 -m lora_verify mutants --compare docs/mutants_generated_cpu.json "$res/mutants_gpu.json" \
    >"$res/mutants_compare.md" 2>&1; head -1 "$res/mutants_compare.md" | tee -a "$out/$phase.txt"
}
fuzz_sweep() {  # GPU CORES: fuzzing rates by workers and bundle size on a warm cache, then one worker's profile
  export TRITON_CACHE_DIR=$PWD/.out/triton-cache
  WARMUP_MIN=1.0 BOX_MIN=1.0 RUNS="" SWEEP="4:8 8:8 15:8 15:32" on "$1" "$2" timeout 480 \
    scripts/fuzz_throughput.sh "$res/fuzz" 15 8 >"$res/fuzz_sweep.log" 2>&1
  say "fuzz sweep: exit $?"; cat "$res/fuzz_sweep.log" >>"$out/$phase.txt"
  on "$1" "$2" timeout $((570 - SECONDS)) scripts/fuzz_profile.sh "$res/profile" 300 8 >"$res/fuzz_profile.log" 2>&1
  say "fuzz profile: exit $?"; head -40 "$res/profile/profile.txt" >>"$out/$phase.txt" 2>/dev/null
}

case $phase in
mutants)  # any machine, a call (repeat until none is left): every GPU and core
  mutants_gpu "$(seq -s, 0 $((gpus - 1)))" 0 $((cores - 1)) ;;
smoke)
  (HYPOTHESIS_PROFILE=dev timeout 170 python3 -m pytest -x -q -n 10 -p no:cacheprovider \
     --verdicts-json "$res/suite_dev.json" --case-dir "$res/cases" >"$res/suite_dev.log" 2>&1
   say "suite, dev profile, -x: exit $? $(grep -E ' passed| failed' "$res/suite_dev.log" | tail -1)") &
  (timeout 150 python3 -m lora_verify matrix --sglang-release .carry/sglang/0.5.23 .carry/sglang/0.4.8 \
     --out "$res/matrix" --profile dev -n 2 -j 2 -- -k close_to_reference >"$res/matrix.log" 2>&1
   say "matrix 0.5.23/0.4.8, closeness, dev: exit $?"; grep -E "^\| sglang" "$res/matrix/matrix.md" | head -4 | tee -a "$out/$phase.txt") &
  wait
  (LORA_SGLANG=$LORA_SGLANG_PEERS timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_peers.py \
     >"$res/test_peers.log" 2>&1; say "test_peers: exit $? $(tail -1 "$res/test_peers.log")") &
  (LORA_SGLANG=$LORA_SGLANG_PEERS timeout 90 python3 -m lora_verify bench --tiny --dry-run --out "$res/bench" \
     >"$res/bench.log" 2>&1; say "bench --tiny --dry-run: exit $? $(tail -1 "$res/bench.log")") &
  (timeout 60 python3 -m lora_verify fuzz --minutes 0.33 -n 4 --bundle 8 --report "$res/fuzz.json" \
     --case-dir "$res/fuzz_cases" >"$res/fuzz.log" 2>&1
   say "fuzz 20 s: exit $? $(tr '\r' '\n' <"$res/fuzz.log" | grep -E 'batches in' | tail -1)") &
  wait
  (timeout 100 python3 -m lora_verify mutants --generated --sample 2 --seed 0 -j 2 --compiled --parallel-sanity \
     --budget 10 --json "$res/mutants.json" >"$res/mutants.log" 2>&1; say "mutants: exit $? $(tail -1 "$res/mutants.log")")
  ;;
a)
  (STEPS="matrix gpu" on 0 "$first" timeout 570 scripts/matrix_gpu.sh "$res/releases" \
     >"$res/matrix_gpu.log" 2>&1; say "matrix_gpu (matrix, 0.5.23 gpu profile): exit $?"
   cat "$res/matrix_gpu.log" >>"$out/$phase.txt") &
  (STEPS="offsets" on $((gpus - 1)) "$second" timeout 200 scripts/matrix_gpu.sh "$res/offsets" \
     >"$res/offsets.log" 2>&1; say "large offsets: exit $?"; cat "$res/offsets.log" >>"$out/$phase.txt"
   LORA_SGLANG=$LORA_SGLANG_PEERS on $((gpus - 1)) "$second" timeout $((570 - SECONDS)) scripts/gpu_suite.sh "$res/suite" "$half" \
     >"$res/gpu_suite.log" 2>&1; say "gpu_suite (gpu profile): exit $?"; cat "$res/gpu_suite.log" >>"$out/$phase.txt") &
  wait
  ;;
b)
  (LORA_SGLANG=$LORA_SGLANG_PEERS on 0 "$first" timeout 560 python3 -m lora_verify bench --grid full --rep 2 \
     --compile-jobs "$half" --budget-s 480 --out "$res/bench" >"$res/bench.log" 2>&1
   say "bench full: exit $?"; tail -5 "$res/bench.log" >>"$out/$phase.txt") &
  if [ "$gpus" -lt 2 ]; then wait; fi
  (WARMUP_MIN=0.5 BOX_MIN=0.5 RUNS="one_worker n_workers_bundle loops" on $((gpus - 1)) "$second" timeout 200 \
     scripts/fuzz_throughput.sh "$res/fuzz" "$((half - 1))" 8 >"$res/fuzz_throughput.log" 2>&1
   say "fuzz_throughput: exit $?"; cat "$res/fuzz_throughput.log" >>"$out/$phase.txt"
   for peer in sglang_csgmv sglang_triton_v2 vllm_batch_invariant vllm; do
     left=$((565 - SECONDS)); [ "$left" -gt 30 ] || { say "peer $peer: not run (no time left in the call)"; continue; }
     PEERS=$peer LORA_SGLANG=$LORA_SGLANG_PEERS on $((gpus - 1)) "$second" timeout $((left < 150 ? left : 150)) \
       scripts/peers_gpu.sh "$res/peers" gpu "$half" >>"$res/peers_gpu.log" 2>&1
     say "peer $peer (gpu profile): exit $?"
   done
   cat "$res/peers_gpu.log" >>"$out/$phase.txt") &
  wait
  ;;
c)
  (on 0 "$first" timeout 440 python3 -m lora_verify run --impl lora_verify.adapters.sglang --sglang .carry/sglang/0.5.23 \
     -n "$half" --profile gpu --verdicts-json "$res/sglang-0.5.23-gpu.json" --case-dir "$res/sglang-0.5.23-gpu-cases" \
     -- -v >"$res/sglang-0.5.23-gpu.log" 2>&1
   say "sglang 0.5.23, gpu profile: exit $? $(grep -E ' passed| failed' "$res/sglang-0.5.23-gpu.log" | tail -1)"
   LORA_SGLANG=$LORA_SGLANG_PEERS on 0 "$first" timeout 90 python3 -m pytest -q -n 8 -p no:cacheprovider \
     tests/test_peers.py >"$res/test_peers.log" 2>&1; say "test_peers: exit $? $(tail -1 "$res/test_peers.log")") &
  (WARMUP_MIN=0.5 BOX_MIN=0.5 RUNS="one_worker n_workers_bundle loops" on $((gpus - 1)) "$second" timeout 200 \
     scripts/fuzz_throughput.sh "$res/fuzz" "$((half - 1))" 8 >"$res/fuzz_throughput.log" 2>&1
   say "fuzz_throughput: exit $?"; cat "$res/fuzz_throughput.log" >>"$out/$phase.txt"
   start=$SECONDS
   LORA_SGLANG=$LORA_SGLANG_PEERS HYPOTHESIS_PROFILE=ci on $((gpus - 1)) "$second" timeout $((560 - SECONDS)) \
     python3 -m pytest -v -n "$half" --maxschedchunk 1 -p no:cacheprovider --verdicts-json "$res/suite_ci.json" \
     --case-dir "$res/suite_ci_cases" >"$res/suite_ci.log" 2>&1
   say "our suite, ci profile, compiled: exit $? after $((SECONDS - start)) s $(grep -E ' passed| failed' "$res/suite_ci.log" | tail -1)"
   grep -E "FAILED|ERROR" "$res/suite_ci.log" | grep -v "^E " | head -30 >>"$out/$phase.txt") &
  wait
  ;;
verdicts)
  q=$((cores / 4)); v=(-- -v -v -rfE --durations=25 -p no:randomly)  # -v twice: run passes -q
  (CUDA_VISIBLE_DEVICES=$(gpu 0),$(gpu 1) taskset -c "$(quarter 0 2)" $stop 530 python3 -m lora_verify run \
     --impl lora_verify.adapters.sglang --sglang .carry/sglang/0.5.23 -n $((2 * q - 2)) --profile gpu \
     --verdicts-json "$res/sglang-0.5.23-gpu.json" --case-dir "$res/sglang-0.5.23-gpu-cases" "${v[@]}" \
     >"$res/sglang-0.5.23-gpu.log" 2>&1
   say "sglang 0.5.23, gpu profile: exit $? $(grep -E ' passed| failed' "$res/sglang-0.5.23-gpu.log" | tail -1)") &
  peer() {  # GPU CORES WORKERS LIMIT NAME
    local start=$SECONDS
    LORA_SGLANG=$LORA_SGLANG_PEERS on "$1" "$2" $stop "$4" python3 -m lora_verify run --impl "lora_verify.adapters.$5" \
      -n "$3" --profile gpu --verdicts-json "$res/$5-gpu.json" --case-dir "$res/$5-gpu-cases" "${v[@]}" \
      >"$res/$5-gpu.log" 2>&1
    say "$5, gpu profile: exit $? after $((SECONDS - start)) s $(grep -E ' passed| failed' "$res/$5-gpu.log" | tail -1)"
  }
  peer "$(gpu 2)" "$(quarter 2)" $((q / 2)) 530 sglang_csgmv &
  peer "$(gpu 2)" "$(quarter 2)" $((q / 2)) 530 sglang_triton_v2 &
  peer "$(gpu 3)" "$(quarter 3)" $((q / 2)) 530 vllm_batch_invariant &
  (peer "$(gpu 3)" "$(quarter 3)" $((q / 4)) 300 vllm
   left=$((540 - SECONDS))
   on "$(gpu 3)" "$(quarter 3)" timeout $((left > 60 ? left : 60)) scripts/fuzz_faults.sh "$res/faults" 1.5 4 20 -k "sgemm_lora_a or sgemm_lora_b" \
     >"$res/fuzz_faults.log" 2>&1; say "fuzz_faults: exit $?"; cat "$res/fuzz_faults.log" >>"$out/$phase.txt") &
  (STEPS=matrix ROW_TIMEOUT=280 on "$(gpu 3)" "$(quarter 3)" timeout 300 scripts/matrix_gpu.sh "$res/row-0.5.10" 0.5.10 \
     >"$res/row-0.5.10.log" 2>&1; say "matrix row 0.5.10 (ci profile): exit $?"; cat "$res/row-0.5.10.log" >>"$out/$phase.txt") &
  wait
  ;;
final)
  diag() {  # CORES NAME IMPL K: one property test in one process, gpu profile, statistics, stacks after 90 s
    HYPOTHESIS_PROFILE=gpu LORA_SGLANG=$LORA_SGLANG_PEERS on "$(gpu 0)" "$1" timeout -s INT -k 20 230 python3 -m pytest -p no:xdist \
      -p no:randomly -p no:cacheprovider --impl "$3" --sglang .carry/sglang/0.5.23 lora_verify/suite/test_properties.py -k "$4" \
      --hypothesis-show-statistics -o faulthandler_timeout=90 --durations=3 -q >"$res/diag-$2.log" 2>&1
    say "diag $2 ($4): exit $? $(grep -E ' passed| failed' "$res/diag-$2.log" | tail -1)"
  }
  k1="sgemm_lora_a_fwd and close_to_reference and unsorted"; k2="sgemm_lora_b_fwd and sorted_ and both"
  q=$((cores / 4)); c0=$(quarter 0)
  (diag "${c0%-*}-$((q / 3))" sglang-close lora_verify.adapters.sglang "$k1"
   diag "${c0%-*}-$((q / 3))" sglang-layouts lora_verify.adapters.sglang "$k2") &
  (diag "$((q / 3 + 1))-$((2 * q / 3))" vllm-bi-close lora_verify.adapters.vllm_batch_invariant "$k1"
   diag "$((q / 3 + 1))-$((2 * q / 3))" csgmv-layouts lora_verify.adapters.sglang_csgmv "$k2") &
  (diag "$((2 * q / 3 + 1))-$((q - 1))" ours-close impl "$k1"
   diag "$((2 * q / 3 + 1))-$((q - 1))" ours-layouts impl "$k2") &
  (CUDA_VISIBLE_DEVICES=$(gpu 1),$(gpu 2) taskset -c "$(quarter 1 2)" timeout -s INT -k 20 500 python3 -m lora_verify \
     mutants --generated --only $(cat .carry/cpu_mutants.txt) -j $((2 * q - 2)) --compiled --memcheck \
     --parallel-sanity --budget 330 --cpu-json docs/mutants_generated_cpu.json --json "$res/mutants_gpu.json" \
     >"$res/mutants_gpu.log" 2>&1; say "mutants (compiled): exit $? $(grep 'kill rate' "$res/mutants_gpu.log")"
   python3 -m lora_verify mutants --compare docs/mutants_generated_cpu.json "$res/mutants_gpu.json" \
     >"$res/mutants_compare.md" 2>&1; head -1 "$res/mutants_compare.md" | tee -a "$out/$phase.txt") &
  (LORA_SGLANG=$LORA_SGLANG_PEERS on "$(gpu 3)" "$(quarter 3)" timeout 540 python3 -m lora_verify bench --grid full \
     --rep 2 --compile-jobs "$q" --budget-s 450 --out "$res/bench" >"$res/bench.log" 2>&1
   say "bench full: exit $?"; tail -5 "$res/bench.log" >>"$out/$phase.txt") &
  wait
  ;;
props)
  export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
  prop() {  # GPUS CORES LIMIT IMPL NAME
    LORA_SGLANG=$LORA_SGLANG_PEERS CUDA_VISIBLE_DEVICES=$1 taskset -c "$2" $stop "$3" python3 -m lora_verify run \
      --impl "$4" --sglang .carry/sglang/0.5.23 -n 16 --profile gpu --verdicts-json "$res/$5.json" \
      --case-dir "$res/$5-cases" -- -v -v -rfE -p no:randomly -k test_property >"$res/$5.log" 2>&1
    say "$5, property tests, gpu profile: exit $? $(grep -E ' passed| failed' "$res/$5.log" | tail -1)"
  }
  prop "$(gpu 0),$(gpu 1)" "$(quarter 0 2)" 320 lora_verify.adapters.sglang sglang-0.5.23-props &
  prop "$(gpu 2),$(gpu 3)" "$(quarter 2 2)" 320 lora_verify.adapters.sglang_csgmv csgmv-props &
  wait
  ;;
gpu)
  q=$((cores / 4)); v=(-- -v -v -rfE --durations=25 -p no:randomly)
  (LORA_SGLANG=$LORA_SGLANG_PEERS on "$(gpu 0)" "$(quarter 0)" timeout 560 scripts/gpu_suite.sh "$res/suite" $((q - 1)) \
     >"$res/gpu_suite.log" 2>&1; say "our suite, gpu profile: exit $? $(cat "$res/suite/time.txt" 2>/dev/null)") &
  peers() {  # GPU NAME...: each peer's whole suite in turn on one GPU and its quarter of the cores
    local g=$1 name start left; shift
    for name in "$@"; do
      left=$((550 - SECONDS)); [ "$left" -gt 30 ] || { say "$name: not run (no time left)"; continue; }
      start=$SECONDS
      LORA_SGLANG=$LORA_SGLANG_PEERS on "$(gpu "$g")" "$(quarter "$g")" $stop "$left" python3 -m lora_verify run \
        --impl "lora_verify.adapters.$name" -n $((q - 1)) --profile gpu --verdicts-json "$res/$name-gpu.json" \
        --case-dir "$res/$name-gpu-cases" "${v[@]}" >"$res/$name-gpu.log" 2>&1
      say "$name, gpu profile: exit $? after $((SECONDS - start)) s $(grep -E ' passed| failed' "$res/$name-gpu.log" | tail -1)"
    done
  }
  peers 1 sglang_csgmv sglang_triton_v2 &
  peers 2 vllm_batch_invariant vllm &
  (on "$(gpu 3)" "$(quarter 3)" timeout -s INT -k 20 400 python3 -m lora_verify mutants --generated -j $((q - 1)) \
     --compiled --memcheck --parallel-sanity --budget 250 --cpu-json docs/mutants_generated_cpu.json \
     --json "$res/mutants_gpu.json" >"$res/mutants_gpu.log" 2>&1
   say "generated mutants, compiled: exit $? $(grep 'kill rate' "$res/mutants_gpu.log")"
   python3 -m lora_verify mutants --compare docs/mutants_generated_cpu.json "$res/mutants_gpu.json" \
     >"$res/mutants_compare.md" 2>&1; head -1 "$res/mutants_compare.md" | tee -a "$out/$phase.txt"
   left=$((555 - SECONDS))
   on "$(gpu 3)" "$(quarter 3)" timeout $((left > 60 ? left : 60)) scripts/fuzz_faults.sh "$res/faults" 0.6 4 20 \
     -k "sgemm_lora_a or sgemm_lora_b" >"$res/fuzz_faults.log" 2>&1; say "fuzz_faults: exit $?"
   cat "$res/fuzz_faults.log" >>"$out/$phase.txt") &
  wait
  ;;
routing)
  tree=.carry/routing_tree; [ -d "$tree/impl" ] || { say "no $tree: git archive routing-one-launch into it"; exit 2; }
  (on "$(gpu 0)" "$(quarter 0)" timeout 300 python3 -m benchmarks.compare . --new "$tree" --routing --grid full \
     >"$res/routing_compare.log" 2>&1; say "routing compare: exit $? $(tail -1 "$res/routing_compare.log")") &
  (cd "$tree" && CUDA_VISIBLE_DEVICES=$(gpu 1),$(gpu 2),$(gpu 3) taskset -c "$(quarter 1 3)" \
     LORA_SGLANG=../sglang/0.5.23 LORA_VLLM=../vllm PYTHONPATH=../sglang/0.5.23 HYPOTHESIS_PROFILE=ci \
     timeout -s INT -k 20 330 python3 -m pytest -v -n $((3 * cores / 4 - 3)) --maxschedchunk 1 -p no:cacheprovider \
     --verdicts-json "$res/branch_suite_ci.json" --case-dir "$res/branch_suite_cases" >"$res/branch_suite_ci.log" 2>&1
   say "the branch's suite, ci profile: exit $? $(grep -E ' passed| failed' "$res/branch_suite_ci.log" | tail -1)") &
  wait
  ;;
matrix)
  (PROFILE=gpu STEPS=matrix ROWS=8 WORKERS=$((cores / 8 - 1)) ROW_TIMEOUT=540 timeout 560 scripts/matrix_gpu.sh \
     "$res/releases" >"$res/matrix_gpu.log" 2>&1; say "release matrix, gpu profile: exit $?"
   cat "$res/matrix_gpu.log" >>"$out/$phase.txt")
  ;;
h1)  # one GPU, 16 cores (the machine lent in the fifth session): where 15 fuzzing workers lose their rate
  export TRITON_CACHE_DIR=$PWD/.out/triton-cache
  WARMUP_MIN=1.0 BOX_MIN=0.75 RUNS="" SWEEP="4:8 8:8 15:8 15:32" timeout 420 \
    scripts/fuzz_throughput.sh "$res/fuzz" 15 8 >"$res/fuzz_sweep.log" 2>&1
  say "fuzz sweep: exit $?"; cat "$res/fuzz_sweep.log" >>"$out/$phase.txt"
  # one worker's profile among 14 fuzzing workers, then alone: what the sharing costs, function by function
  (timeout 150 python3 -m lora_verify fuzz --minutes 1.6 -n 14 --bundle 8 --case-dir "$res/load_cases" \
     --report "$res/load.json" --log "$res/load_rounds.log" >"$res/load.log" 2>&1) &
  sleep 20
  timeout 120 scripts/fuzz_profile.sh "$res/profile_loaded" 150 8 >"$res/profile_loaded.log" 2>&1
  say "profile among 14 workers: exit $?"; head -30 "$res/profile_loaded/profile.txt" >>"$out/$phase.txt" 2>/dev/null
  wait
  timeout $((575 - SECONDS)) scripts/fuzz_profile.sh "$res/profile_alone" 150 8 >"$res/profile_alone.log" 2>&1
  say "profile alone: exit $?"; head -30 "$res/profile_alone/profile.txt" >>"$out/$phase.txt" 2>/dev/null
  ;;
h2)  # one GPU: our whole suite at the gpu profile, cold cache and no durations (issue 21's 5 minutes), then fuzzing
  cold_suite 420
  WARMUP_MIN=0.75 BOX_MIN=1.25 RUNS="n_workers_bundle" timeout $((575 - SECONDS)) scripts/fuzz_throughput.sh \
    "$res/fuzz" 15 8 >"$res/fuzz.log" 2>&1
  say "fuzz: exit $?"; cat "$res/fuzz.log" >>"$out/$phase.txt" ;;
h3)  # one GPU (the fifth session ran it right after h2, on its cache): the device reference's floor, side by side
  export TRITON_CACHE_DIR=$PWD/.out/triton-cache
  WARMUP_MIN=0.75 BOX_MIN=1.0 RUNS="n_workers_bundle device" timeout 280 scripts/fuzz_throughput.sh "$res/fuzz" 15 8 \
    >"$res/fuzz.log" 2>&1
  say "fuzz: exit $?"; cat "$res/fuzz.log" >>"$out/$phase.txt" ;;
h5)  # one GPU: the sixth session's kernel edits, each against the kernels before it, side by side
  export TRITON_CACHE_DIR=$PWD/.out/triton-cache
  timeout 200 python3 -m benchmarks.compare .carry/main_tree --routing --grid full >"$res/routing_compare.log" 2>&1
  say "routing, two launches against one: exit $?"; cat "$res/routing_compare.log" >>"$out/$phase.txt"
  timeout $((560 - SECONDS)) python3 -m benchmarks.compare .carry/main_tree --ops shrink,qkv_shrink,gate_up_shrink \
    >"$res/shrink_compare.log" 2>&1
  say "shrinks, grouped loop not unrolled: exit $?"; grep -E "geomean|1024/" "$res/shrink_compare.log" >>"$out/$phase.txt" ;;
h6)  # one GPU: h5's comparisons on this tree (the routing's one-chunk path, the grouped shrink's loads before its
  # loop), then h2 on it: our whole suite at the gpu profile, cold cache, no durations
  export TRITON_CACHE_DIR=$PWD/.out/triton-cache; rm -rf "$TRITON_CACHE_DIR" .out/durations.json
  timeout 100 python3 -m benchmarks.compare .carry/main_tree --routing --grid full >"$res/routing_compare.log" 2>&1
  say "routing against the one-launch routing: exit $?"; cat "$res/routing_compare.log" >>"$out/$phase.txt"
  timeout 100 python3 -m benchmarks.compare .carry/main_tree --ops shrink,qkv_shrink,gate_up_shrink \
    >"$res/shrink_compare.log" 2>&1
  say "shrinks, grouped loop not unrolled: exit $?"; grep -E "geomean|1024/" "$res/shrink_compare.log" >>"$out/$phase.txt"
  cold_suite $((570 - SECONDS)) ;;
h7)  # one GPU, right after h6 on its cache: the fuzzing rate on this tree, then routing's generated mutants compiled
  export TRITON_CACHE_DIR=$PWD/.out/triton-cache
  WARMUP_MIN=0.25 BOX_MIN=1.0 RUNS="n_workers_bundle" timeout 200 scripts/fuzz_throughput.sh "$res/fuzz" 15 8 \
    >"$res/fuzz.log" 2>&1
  say "fuzz: exit $?"; cat "$res/fuzz.log" >>"$out/$phase.txt"
  names=$(python3 -c "from pathlib import Path; from lora_verify import generated
print(' '.join(m.name for m in generated.generate(Path('.')) if m.file.endswith('routing.py') and not m.equivalent))")
  timeout -s INT -k 20 $((565 - SECONDS)) python3 -m lora_verify mutants --generated --only $names --compiled \
    --memcheck --parallel-sanity --budget $((540 - SECONDS)) -j 14 --cpu-json docs/mutants_generated_cpu.json \
    --json "$res/mutants_gpu.json" >"$res/mutants_gpu.log" 2>&1
  say "routing's generated mutants, compiled: exit $? $(grep 'kill rate' "$res/mutants_gpu.log")" ;;
h8|h8s)  # one GPU: the branch's shrinks against main's, side by side, and the cold suite on the branch
  export TRITON_CACHE_DIR=$PWD/.out/triton-cache
  shrinks() {  # NAME LIMIT WHAT COMPARE_ARGS...: the four shrinks side by side, full grid 8B, all shapes
    local name=$1 limit=$2 what=$3; shift 3
    timeout "$limit" python3 -m benchmarks.compare "$@" --grid full --shapes all --rep 10 \
      --ops shrink,qkv_shrink,gate_up_shrink,down_shrink >"$res/compare_$name.log" 2>&1
    say "$what, shrinks, full grid 8B, all shapes: exit $?"; grep geomean "$res/compare_$name.log" >>"$out/$phase.txt"
  }
  compare_shrinks() { shrinks main 200 "branch against main" .carry/main_tree; }
  warps() {  # the shrink launched with 8 warps (a copy of impl/ in .out/warps8) against this tree, time allowing
    rm -rf .out/warps8 && mkdir -p .out/warps8 && cp -r impl .out/warps8/ &&
      sed -i 's/^        FUSED=fused,$/        FUSED=fused,\n        num_warps=8,/' .out/warps8/impl/shrink.py &&
      grep -q 'num_warps=8' .out/warps8/impl/shrink.py || { say "warps: variant not made"; return; }
    shrinks warps8 $((${H8_S:-575} - SECONDS)) "8 warps against 4 (this tree)" . --new .out/warps8
  }
  if [ "$phase" = h8 ]; then
    compare_shrinks; cold_suite $((${H8_S:-575} - 60 - SECONDS))
    if [ $((${H8_S:-575} - SECONDS)) -ge 100 ]; then warps; else say "warps: under 100 s left"; fi
  else
    GPU_SUITE_K=lora_a cold_suite $((${H8_S:-575} - 150 - SECONDS))
    if [ $((${H8_S:-575} - SECONDS)) -ge 150 ]; then compare_shrinks
    else say "comparison not run: under 150 s left"; fi
  fi ;;
h9)  # one GPU: our whole suite at the gpu profile on this tree, cold cache, no durations
  cold_suite "${H9_S:-570}" ;;  # H9_S: the phase's seconds; GPU_SUITE_K: part of the suite
h10|h11)  # one GPU: the full grid against every peer (H10_S: its seconds, 570 for h10, 330 for h11; H10_LAYERS:
  # --layers); h11 then runs the generated mutants not argued equivalent that docs/ lacks, in the time left
  bench_full "${H10_S:-$([ "$phase" = h10 ] && echo 570 || echo 330)}"
  left=$((570 - SECONDS))
  if [ "$phase" = h11 ] && [ "$left" -ge 120 ]; then mutants_gpu 0 0 $((cores - 1)) "$left" others; fi ;;
h12)  # one GPU, a session's first call: on an H200, h10's grid (330 s) and then h9's cold suite in the time left;
  # on another card (its grid is already timed), the cold suite (330 s) and then the generated mutants not argued
  # equivalent that docs/ lacks, in the time left
  if nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200; then
    bench_full 330; cold_suite $((570 - SECONDS))
  else
    say "not an H200: the grid is not run"; cold_suite 330
    left=$((570 - SECONDS)); [ "$left" -lt 120 ] || mutants_gpu 0 0 $((cores - 1)) "$left" others
  fi ;;
h13)  # one GPU, a session's first call: on an H200 as h12; elsewhere the memcheck layer checked, then the mutants
  if nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200; then
    bench_full 330; cold_suite $((570 - SECONDS))
  else
    say "not an H200: the grid is not run"
    timeout 240 python3 -m pytest -q -rA -p no:cacheprovider tests/test_tight.py >"$res/tight.log" 2>&1
    say "tests/test_tight.py compiled: exit $? $(grep -E ' passed| failed' "$res/tight.log" | tail -1)"
    HYPOTHESIS_PROFILE=ci LORA_MUTANT_EXAMPLES=10 timeout 200 scripts/sanitize.sh -p lora_verify.mutate >"$res/sanitize.log" 2>&1
    say "unmutated tree, memcheck tier (scripts/sanitize.sh, ci profile, 10 examples): exit $? $(grep -E ' passed| failed|ERROR SUMMARY' "$res/sanitize.log" | tail -2 | tr '\n' ' ')"
    mutants_gpu 0 0 $((cores - 1)) $((570 - SECONDS))
  fi ;;
h14)  # one GPU: the shrink's constants where it loses, sglang beside them; then expand's candidates
  export TRITON_CACHE_DIR=$PWD/.out/triton-cache
  losing=(--grid full --layer 8b --phase all --ops shrink,down_shrink --peer sglang
          --shapes 64/64/64,64/64/128,p16x512/8/16,p1x8192/1/16,256/8/64,1024/64/16,1024/1/128)
  tune 200 shrink_group_stages "${losing[@]}" --set impl.shrink.GROUP=1,4 --set impl.shrink.NUM_STAGES=2,3,4
  tune 150 shrink_blocks "${losing[@]}" --set impl.shrink.BLOCK_K_LONG=128,256 --set impl.shrink.K_BLOCKS_PER_SPLIT=2,4
  tune $((570 - SECONDS)) expand --grid small --ops expand ;;
h15)  # one GPU: the shrink's pipeline depth by batch size and its column tile: same bits, then timed
  export TRITON_CACHE_DIR=$PWD/.out/triton-cache
  stages=(--set impl.shrink.STAGES_MIN_ROWS=1073741824,2048,4096)
  timeout 60 python3 -m benchmarks.same_bits --phase prefill --ops shrink,down_shrink "${stages[@]}" \
    >"$res/same_bits_stages.log" 2>&1
  say "same bits, STAGES_MIN_ROWS (8b prefill, shrink and down_shrink): exit $? $(tail -1 "$res/same_bits_stages.log")"
  timeout 60 python3 -m benchmarks.same_bits --phase decode --ops shrink,qkv_shrink --set impl.shrink.BLOCK_N_MAX=64,16,32 \
    >"$res/same_bits_block_n.log" 2>&1
  say "same bits, BLOCK_N_MAX (8b decode, shrink and qkv_shrink): exit $? $(tail -1 "$res/same_bits_block_n.log")"
  tune 110 stages_8b --grid full --layer 8b --phase prefill --ops shrink,qkv_shrink,gate_up_shrink,down_shrink \
    --peer sglang "${stages[@]}"
  tune 60 stages_70b --grid full --layer 70b --phase prefill --ops shrink,down_shrink --peer sglang \
    --set impl.shrink.STAGES_MIN_ROWS=1073741824,4096
  tune 80 block_n --grid full --layer 8b --shapes 64/64/64,64/64/128,256/64/128 \
    --ops shrink,qkv_shrink,gate_up_shrink,down_shrink --peer sglang --set impl.shrink.BLOCK_N_MAX=16,32,64
  left=$((400 - SECONDS))
  if [ "$left" -gt 40 ]; then
    HYPOTHESIS_PROFILE=ci timeout "$left" python3 -m pytest -q -n 8 -p no:cacheprovider lora_verify/suite \
      -k "grouped or invariant" >"$res/suite_sorted.log" 2>&1
    say "suite, grouped sorted == unsorted and batch-invariant, ci profile, compiled: exit $? $(grep -E ' passed| failed' "$res/suite_sorted.log" | tail -1)"
  fi ;;
h16)  # one GPU: the shrink's pipeline depth as committed, against the old launch (STAGES_MIN_ROWS off)
  export TRITON_CACHE_DIR=$PWD/.out/triton-cache
  stages=(--set impl.shrink.STAGES_MIN_ROWS=1073741824,4096)
  timeout 60 python3 -m benchmarks.same_bits --phase prefill --ops shrink,qkv_shrink,down_shrink "${stages[@]}" \
    >"$res/same_bits_stages.log" 2>&1
  say "same bits, STAGES_MIN_ROWS (8b prefill): exit $? $(tail -1 "$res/same_bits_stages.log")"
  for layer in 8b 70b; do
    tune 60 "stages_$layer" --grid full --layer $layer --phase prefill --peer sglang "${stages[@]}" \
      --ops shrink,qkv_shrink,gate_up_shrink,down_shrink
  done
  HYPOTHESIS_PROFILE=ci timeout 100 python3 -m pytest -q -n 8 -p no:cacheprovider lora_verify/suite \
    -k "grouped or invariant" >"$res/suite_sorted.log" 2>&1
  say "suite, grouped sorted == unsorted and batch-invariant, ci profile, compiled: exit $? $(grep -E ' passed| failed' "$res/suite_sorted.log" | tail -1)" ;;
h17)  # one GPU: expand's wide row tiles: same bits, then timed beside cuBLAS and sglang
  export TRITON_CACHE_DIR=$PWD/.out/triton-cache
  wide=(--set impl.expand.WIDE_ROWS=16,64,128 --set impl.expand.WIDE_WARPS=4,8)  # 16: the tile table's rows (off)
  one=256/1/16,256/1/64,256/1/128,1024/1/16,1024/1/64,1024/1/128,p1x2048/1/64,p1x8192/1/16
  many=1024/8/16,1024/8/64,1024/8/128,p16x512/8/16,p8x1024/8/64,p64x128/64/128
  timeout 150 python3 -m benchmarks.same_bits --ops expand,qkv_expand,gate_up_expand --shapes "$one,$many" "${wide[@]}" \
    >"$res/same_bits_wide.log" 2>&1
  say "same bits, WIDE_ROWS x WIDE_WARPS (8b, expands): exit $? $(tail -1 "$res/same_bits_wide.log")"
  tune 110 wide_one --grid full --layer 8b --phase all --ops expand,qkv_expand,gate_up_expand --shapes "$one" \
    --peer cuBLAS "${wide[@]}"
  tune 100 wide_many --grid full --layer 8b --phase all --ops expand,qkv_expand --shapes "$many" --peer sglang "${wide[@]}" ;;
h18)  # one GPU: the final kernels (H18_WIDE: expand's WIDE_* values), the cold suite, then the full grid
  if [ -n "${H18_WIDE:-}" ]; then
    sed -i "s/^WIDE_ROWS, WIDE_MIN_ROWS, WIDE_MIN_SEGMENT_ROWS, WIDE_WARPS = .*/WIDE_ROWS, WIDE_MIN_ROWS, WIDE_MIN_SEGMENT_ROWS, WIDE_WARPS = $H18_WIDE/" impl/expand.py
    say "impl/expand.py: $(grep '^WIDE_ROWS' impl/expand.py); impl/ $(find impl -name '*.py' | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12)"
  fi
  cold_suite "${H18_S:-300}"; bench_full $((565 - SECONDS)) ;;
h19)  # one GPU: expand's wide column rule, expand's early base load, the shrink's blocks on one-adapter shapes
  export TRITON_CACHE_DIR=$PWD/.out/triton-cache
  cols=(--set impl.expand.WIDE_MIN_PROGRAMS=64,132,264,384 --set impl.expand.WIDE_STAGES=2,3,4
        --set impl.expand.WIDE_BLOCK_N=0,128 --layouts sorted)
  one=256/1/64,256/1/128,1024/1/64,1024/1/128,p1x2048/1/64
  many=1024/8/64,1024/8/128,p8x1024/8/64,p64x128/64/128
  tune 170 wide_one --grid full --layer 8b --phase all --ops expand,gate_up_expand --shapes "$one" --peer cuBLAS "${cols[@]}"
  tune 80 wide_qkv --grid full --layer 8b --phase all --ops qkv_expand --shapes "$one" --peer cuBLAS "${cols[@]}" \
    --set impl.expand.WIDE_QKV=0,1
  tune 70 wide_many --grid full --layer 8b --phase all --ops expand --shapes "$many" --peer sglang "${cols[@]}"
  rm -rf .out/early && mkdir -p .out/early && cp -r impl .out/early/ && python3 - <<'PY'
from pathlib import Path
p = Path(".out/early/impl/expand.py"); s = p.read_text()
dot = "        acc = tl.dot(xs, ws)\n"
load = "        base = tl.load(out_ptrs, mask=out_mask, other=0.0)\n"
assert s.count(dot) == 1 and s.count(load) == 1
p.write_text(s.replace(dot, "").replace(load, load + dot))
PY
  timeout 110 python3 -m benchmarks.compare . --new .out/early --grid small --shapes all --rep 10 \
    --ops expand,qkv_expand,gate_up_expand >"$res/compare_early.log" 2>&1
  say "expand's base loaded before the dot (new) against this tree (old), small grid: exit $?"
  grep -E "geomean|DIFFER" "$res/compare_early.log" >>"$out/$phase.txt"
  tune $((560 - SECONDS)) shrink_one --grid full --layer 70b --phase all --ops shrink,qkv_shrink,gate_up_shrink,down_shrink \
    --shapes 256/1/128,1024/1/64,1024/1/128,p1x2048/1/64 --peer cuBLAS --layouts sorted \
    --set impl.shrink.BLOCK_N_MAX=64,128 --set impl.shrink.K_BLOCKS_PER_SPLIT=2,4 ;;
h20)  # one GPU: h19's follow-up: the wide launch's warps and column tile, qkv wide, the narrow column tile
  export TRITON_CACHE_DIR=$PWD/.out/triton-cache
  cols=(--set impl.expand.WIDE_WARPS=4,8 --set impl.expand.WIDE_BLOCK_N=128,256
        --set impl.expand.WIDE_MIN_PROGRAMS=132,264,384 --set impl.expand.WIDE_STAGES=2,3 --layouts sorted)
  one=256/1/64,256/1/128,1024/1/64,1024/1/128,p1x2048/1/64
  many=1024/8/64,1024/8/128,p8x1024/8/64,p64x128/64/128
  tune 100 wide_one --grid full --layer 8b --phase all --ops expand,gate_up_expand --shapes "$one" --peer cuBLAS "${cols[@]}"
  tune 50 wide_many --grid full --layer 8b --phase all --ops expand --shapes "$many" --peer sglang "${cols[@]}"
  fixed=(--set impl.expand.WIDE_MIN_PROGRAMS=264 --set impl.expand.WIDE_STAGES=2 --set impl.expand.WIDE_BLOCK_N=128)
  tune 60 qkv --grid full --layer 8b --phase all --ops qkv_expand --shapes "$one,64/1/128,1024/8/128,p64x128/64/128" \
    --peer cuBLAS --peer sglang --layouts sorted,unsorted "${fixed[@]}" --set impl.expand.WIDE_QKV=0,1 \
    --set impl.expand.W_BLOCK_ELEMENTS=8192,16384
  tune 60 narrow --grid full --layer 8b --ops expand,gate_up_expand \
    --shapes 64/1/128,64/8/128,64/64/128,256/8/128,256/64/128,1024/64/128 --peer sglang "${fixed[@]}" \
    --set impl.expand.W_BLOCK_ELEMENTS=8192,16384 ;;
h21)  # one GPU: the final kernels: same bits (wide column tile or not), the cold suite, the full grid
  export TRITON_CACHE_DIR=$PWD/.out/triton-cache
  wide_columns_same_bits
  cold_suite "${H21_S:-480}"; left=$((${H21_END:-565} - SECONDS))  # H21_END: the phase's seconds
  if [ "$left" -ge 150 ]; then bench_full "$left"; else say "full grid not run: $left s left"; fi ;;
h22)  # one GPU: h21's same bits and cold suite, then the shrink's fusion rule timed where it decides otherwise
  export TRITON_CACHE_DIR=$PWD/.out/triton-cache
  wide_columns_same_bits
  cold_suite "${H22_S:-330}"
  fuse=(--phase all --ops shrink,qkv_shrink,gate_up_shrink,down_shrink --peer cuBLAS --layouts sorted
        --shapes 256/1/128,1024/1/64,1024/1/128,1024/8/64,256/64/64,1024/64/16,p1x2048/1/64,p16x512/8/16,p1x8192/1/16,p8x1024/8/64,p64x128/64/128
        --set impl.shrink.FUSE_MIN_PROGRAMS=16,128 --set impl.shrink.FUSE_MIN_TILES=0,256
        --set impl.shrink.GROUP_MIN_ROWS=1024,1048576)
  left=$((560 - SECONDS)); tune $((left / 2)) fuse_70b --grid full --layer 70b "${fuse[@]}"
  tune $((560 - SECONDS)) fuse_8b --grid full --layer 8b "${fuse[@]}" ;;
h23)  # one GPU: the shrink's split length over the full grid, sglang beside
  export TRITON_CACHE_DIR=$PWD/.out/triton-cache
  splits=(--grid full --phase all --ops shrink,qkv_shrink,gate_up_shrink,down_shrink --peer sglang
          --set impl.shrink.K_BLOCKS_PER_SPLIT=4,8,16)
  tune 270 splits_8b --layer 8b "${splits[@]}"
  tune $((560 - SECONDS)) splits_70b --layer 70b "${splits[@]}" ;;
h24)  # one GPU (branch candidate/shrink-splits): the shrink's long splits (K > LONG_SPLIT_K) as committed: the shrink's
  # and real shapes' part of the suite (cold, H24_S s); same bits with the grouped launch's tiles and warps
  # (GROUP x GROUP_BLOCK_N x GROUP_WARPS), then those timed where grouping applies (cuBLAS named; tune.py then skipped
  # it where a shape named had several adapters, as here; it now times it on the one-adapter shapes, "-" elsewhere);
  # then the 70B gate_up_expand rows h21's grid left (its budget)
  export GPU_SUITE_K="lora_a or shrink or real"; cold_suite "${H24_S:-200}"; unset GPU_SUITE_K
  group=(--set impl.shrink.GROUP=4,8 --set impl.shrink.GROUP_BLOCK_N=64,128 --set impl.shrink.GROUP_WARPS=4,8)
  timeout 90 python3 -m benchmarks.same_bits --ops qkv_shrink,down_shrink --phase all \
    --shapes 256/1/128,1024/1/128,1024/8/64,p64x128/64/128 "${group[@]}" --set impl.shrink.GROUP_MIN_ROWS=0,1024 \
    >"$res/same_bits.log" 2>&1
  say "same bits, GROUP x GROUP_BLOCK_N x GROUP_WARPS x GROUP_MIN_ROWS (8b): exit $? $(tail -1 "$res/same_bits.log")"
  grouped=256/1/64,256/1/128,1024/1/8,1024/1/16,1024/1/64,1024/1/128,1024/8/16,1024/8/64,1024/8/128
  wide=(--phase all --ops shrink,qkv_shrink,gate_up_shrink,down_shrink --peer cuBLAS --layouts sorted
        --shapes $grouped,p1x2048/1/64,p4x512/4/64,p16x512/8/16,p1x8192/1/16,p8x1024/8/64,p64x128/64/128 "${group[@]}")
  left=$((480 - SECONDS)); tune $((left / 2)) group_8b --grid full --layer 8b "${wide[@]}"
  tune $((480 - SECONDS)) group_70b --grid full --layer 70b "${wide[@]}"
  left=$((565 - SECONDS)); LORA_SGLANG=$LORA_SGLANG_PEERS timeout "$left" python3 -m lora_verify bench --grid full \
    --layers 70b --ops gate_up_expand --rep 2 --compile-jobs 15 --budget-s $((left - 30)) --out "$res/bench" \
    >"$res/bench.log" 2>&1
  say "bench 70b gate_up_expand: exit $?"; tail -3 "$res/bench.log" >>"$out/$phase.txt" ;;
h25)  # one GPU: the final kernels' shrinks past K = 4096 (70B's four, 8B's down_proj) on the full grid, every peer
  # beside (the rows of benchmarks/results/nvidia-h200 that h21 timed with 4-block splits), in H25_S s (200)
  for part in "70b shrink,qkv_shrink,gate_up_shrink,down_shrink" "8b down_shrink"; do
    set -- $part; left=$((${H25_S:-200} - SECONDS)); [ "$left" -gt 40 ] || { say "bench $1 $2: not run"; continue; }
    [ "$1" = 8b ] || left=$((left * 3 / 4))
    LORA_SGLANG=$LORA_SGLANG_PEERS timeout "$left" python3 -m lora_verify bench --grid full --layers "$1" --ops "$2" \
      --rep 2 --compile-jobs 15 --budget-s $((left - 25)) --out "$res/bench_$1" >"$res/bench_$1.log" 2>&1
    say "bench $1 $2: exit $?"; tail -2 "$res/bench_$1.log" >>"$out/$phase.txt"
  done ;;
h27)  # one GPU, in tree H27_TREE (this one; .carry/branch_full: a branch's): the cold suite, then the shrink's tiles
  # and K block where cuBLAS wins
  cd "${H27_TREE:-.}"; say "tree ${H27_TREE:-.}: impl/ $(impl_of)"
  cold_suite "${H27_S:-300}"
  one=256/1/128,1024/1/64,1024/1/128,p1x2048/1/64,p1x8192/1/16
  tiles=(--set impl.shrink.GROUP=4,8 --set impl.shrink.BLOCK_N_MAX=64,128 --set impl.shrink.NUM_WARPS=4,8)
  blockk=(--set impl.shrink.BLOCK_K_LONG=64,128 --set impl.shrink.K_BLOCKS_PER_SPLIT=4,8)
  timeout 75 python3 -m benchmarks.split_sum --layer 8b --ops shrink,qkv_shrink --out "$res/split_sum_8b.md" \
    >"$res/split_sum_8b.log" 2>&1
  say "split_sum (8b): exit $?"; grep geomean "$res/split_sum_8b.md" | tee -a "$out/$phase.txt"
  left=$((565 - SECONDS))
  tune $((left * 2 / 3)) tiles_8b --grid full --layer 8b --phase all --ops shrink,qkv_shrink,gate_up_shrink \
    --peer cuBLAS --layouts sorted --shapes $one "${tiles[@]}" --rep 10
  tune $((565 - SECONDS)) blockk_8b --grid full --layer 8b --phase all --ops shrink,qkv_shrink,gate_up_shrink \
    --peer cuBLAS --layouts sorted --shapes $one "${blockk[@]}" --rep 10 ;;
h28)  # one GPU: a branch (.carry/branch_tree) timed against .carry/main_tree side by side, then
  # the whole suite, cold, in tree H28_TREE (this one; .carry/branch_full: the branch's) in the time left
  export TRITON_CACHE_DIR=$PWD/.out/triton-cache
  for part in ${H28_PARTS:-8b:150 70b:90}; do  # LAYER:SECONDS each
    kernels_compare "${part#*:}" "${part%:*}" .carry/main_tree --new .carry/branch_tree --layer "${part%:*}" \
      --ops shrink,qkv_shrink,gate_up_shrink,down_shrink --shapes all
  done
  cd "${H28_TREE:-.}"; say "tree ${H28_TREE:-.}: impl/ $(impl_of)"
  cold_suite $((${H28_END:-570} - SECONDS)) ;;  # H28_END: the phase's seconds
h29)  # one GPU: ncu, ours (sorted) and cuBLAS, on the one-adapter shapes cuBLAS wins by most
  export TRITON_CACHE_DIR=$PWD/.out/triton-cache
  for case in qkv_shrink:1024/1/128 down_shrink:1024/1/64 shrink:1024/1/128 qkv_expand:1024/1/128 \
      expand:1024/1/64 gate_up_expand:64/1/128; do
    op=${case%%:*}; shape=${case#*:}
    ncu_profile "${H29_EACH:-90}" "${op}_${shape//\//-}" --layer 8b --ops "$op" --shape "$shape" --layouts sorted \
      --cublas --calls 2
  done ;;
h30)  # one GPU: qkv expand's vectors (branch) against main, the unaligned fallback's cost, the wide launch from 64 rows
  export TRITON_CACHE_DIR=$PWD/.out/triton-cache
  for layer in 8b 70b; do
    kernels_compare 100 "qkv_$layer" .carry/main_tree --new .carry/branch_tree --layer $layer --ops qkv_expand \
      --shapes all
  done
  kernels_compare 80 qkv_variant_8b .carry/branch_tree --new .carry/variant_tree --layer 8b --ops qkv_expand \
    --shapes all
  kernels_compare 150 wide64_8b .carry/branch_tree --new .carry/branch_tree --set impl.expand.WIDE_MIN_ROWS=64 \
    --layer 8b --ops expand,gate_up_expand,qkv_expand --shapes decode
  (cd .carry/branch_full && ncu_profile 60 qkv_expand --layer 8b --ops qkv_expand --shape 1024/1/128 --layouts sorted \
    --cublas --calls 2) ;;
h31)  # one GPU: qkv expand against main's, the cold suite on this tree, then qkv expand's rows of the full grid
  export TRITON_CACHE_DIR=$PWD/.out/triton-cache
  for layer in 8b 70b; do
    [ "${H31_CMP:-0}" -gt 0 ] || break
    kernels_compare "$H31_CMP" "qkv_$layer" .carry/main_tree --layer $layer --ops qkv_expand --shapes all
  done
  cold_suite "${H31_S:-330}"
  left=$((570 - SECONDS))
  LORA_SGLANG=$LORA_SGLANG_PEERS timeout "$left" python3 -m lora_verify bench --grid full --rep 2 --compile-jobs 15 \
    --ops qkv_expand --budget-s $((left - 60)) --out "$res/bench" >"$res/bench.log" 2>&1
  say "bench full, qkv_expand: exit $?"; tail -5 "$res/bench.log" >>"$out/$phase.txt" ;;
h32)  # one GPU: the wide launch's column rule against the tree before it, then the cold suite on this tree
  export TRITON_CACHE_DIR=$PWD/.out/triton-cache
  for layer in 8b 70b; do
    kernels_compare 75 "wide_$layer" .carry/branch_tree --layer $layer --ops expand,gate_up_expand,qkv_expand \
      --shapes decode
  done
  cold_suite "${H32_S:-300}" ;;
x2a|x2b|x2c|x2d|x2e|x2f|x2g|x2h)
  v=(-- -v -v -rfE --durations=25 -p no:randomly); n=$((half - 1))
  peers() {  # GPU CORES LIMIT_EACH NAME...: each peer's whole suite in turn
    local g=$1 c=$2 each=$3 name start left; shift 3
    for name in "$@"; do
      left=$((555 - SECONDS)); [ "$left" -gt 30 ] || { say "$name: not run (no time left)"; continue; }
      [ "$left" -lt "$each" ] || left=$each
      start=$SECONDS
      LORA_SGLANG=$LORA_SGLANG_PEERS on "$g" "$c" $stop "$left" python3 -m lora_verify run \
        --impl "lora_verify.adapters.$name" -n "$n" --profile gpu --verdicts-json "$res/$name-gpu.json" \
        --case-dir "$res/$name-gpu-cases" "${v[@]}" >"$res/$name-gpu.log" 2>&1
      say "$name, gpu profile: exit $? after $((SECONDS - start)) s $(grep -E ' passed| failed' "$res/$name-gpu.log" | tail -1)"
    done
  }
  rows() {  # GPUS CORES JOBS OUT VERSION...: matrix rows at the gpu profile, 270 s each at most
    local g=$1 c=$2 j=$3 o=$4 ver dirs=(); shift 4
    for ver in "$@"; do dirs+=(".carry/sglang/$ver"); done
    CUDA_VISIBLE_DEVICES=$g taskset -c "$c" timeout -k 30 545 python3 -m lora_verify matrix --sglang-release "${dirs[@]}" \
      --out "$o" --profile gpu -n 7 -j "$j" --timeout 270 \
      --title "sglang releases: property verdicts (compiled, gpu profile)" >"$o.log" 2>&1
    say "matrix rows $* (gpu profile): exit $?"; sed -n '/^row /,$p' "$o.log" >>"$out/$phase.txt"
  }
  case $phase in
  x2a)
    (start=$SECONDS; LORA_SGLANG=$LORA_SGLANG_PEERS on 0 "$first" $stop 420 scripts/gpu_suite.sh "$res/suite" "$n" \
       >"$res/gpu_suite.log" 2>&1
     say "our suite, gpu profile: exit $? after $((SECONDS - start)) s; $(cat "$res/suite/time.txt" 2>/dev/null)"
     grep -E "passed|failed|Triton compiles" "$res/suite/gpu_suite.log" | tail -3 | tee -a "$out/$phase.txt"
     on 0 "$first" timeout $((560 - SECONDS)) python3 -m benchmarks.compare .carry/main_tree --routing --grid full \
       >"$res/routing_compare.log" 2>&1; say "routing compare: exit $?"; tail -25 "$res/routing_compare.log" >>"$out/$phase.txt") &
    peers 1 "$second" 280 sglang_triton_v2 vllm_batch_invariant &
    wait ;;
  x2b)
    peers 0 "$first" 280 sglang_csgmv vllm &
    rows 1 "$second" 2 "$res/matrix" 0.4.8 0.4.10 0.5.1 0.5.10 &
    wait ;;
  x2c)
    rows 0,1 "0-$((cores - 1))" 4 "$res/matrix" 0.5.11 0.5.16 0.5.22 0.5.23 0.5.4 0.5.8 0.5.9 0.5.21 ;;
  x2d)
    (dirs=(); for ver in 0.5.11 0.5.22 0.5.16 0.5.23; do dirs+=(".carry/sglang/$ver"); done
     CUDA_VISIBLE_DEVICES=0,1 taskset -c "0-$((cores - 7))" timeout -k 30 420 python3 -m lora_verify matrix \
       --sglang-release "${dirs[@]}" --out "$res/matrix" --profile gpu -n $(((cores - 6) / 2)) -j 2 --timeout 200 \
       --title "sglang releases: property verdicts (compiled, gpu profile)" >"$res/matrix.log" 2>&1
     say "matrix rows (gpu profile): exit $?"; sed -n '/^row /,$p' "$res/matrix.log" >>"$out/$phase.txt") &
    (LORA_SGLANG=$LORA_SGLANG_PEERS on 1 "$((cores - 6))-$((cores - 3))" $stop 400 python3 -m lora_verify run \
       --impl lora_verify.adapters.sglang_csgmv -n 4 --profile gpu --verdicts-json "$res/csgmv-graph.json" \
       --case-dir "$res/csgmv-graph-cases" "${v[@]}" -k test_replay_sequence >"$res/csgmv-graph.log" 2>&1
     say "csgmv graph replay, gpu profile: exit $? $(grep -E ' passed| failed' "$res/csgmv-graph.log" | tail -1)") &
    (start=$SECONDS; HYPOTHESIS_PROFILE=gpu on 0 "$((cores - 2))-$((cores - 1))" $stop 400 python3 -m pytest -p no:xdist \
       -p no:cacheprovider -v lora_verify/suite/test_properties.py -k "sgemm_lora_a_fwd and both" \
       --verdicts-json "$res/ours-shrink-layouts.json" >"$res/ours-shrink-layouts.log" 2>&1
     say "ours, shrink sorted == unsorted, gpu profile: exit $? after $((SECONDS - start)) s $(tail -1 "$res/ours-shrink-layouts.log")") &
    wait ;;
  x2e|x2f)
    (export TRITON_CACHE_DIR=$PWD/.out/triton-cache; [ "$phase" = x2f ] || rm -rf "$TRITON_CACHE_DIR" .out/durations.json
     start=$SECONDS
     LORA_SGLANG=$LORA_SGLANG_PEERS on 0 "$first" $stop 540 scripts/gpu_suite.sh "$res/suite" "$n" >"$res/gpu_suite.log" 2>&1
     say "our suite, gpu profile ($([ "$phase" = x2e ] && echo 'cold cache, no durations' || echo 'warm cache, x2e durations')): exit $? after $((SECONDS - start)) s; $(cat "$res/suite/time.txt" 2>/dev/null)"
     grep -E "passed|failed|Triton compiles|INTERRUPTED" "$res/suite/gpu_suite.log" | tail -4 | tee -a "$out/$phase.txt"
     cp .out/durations.json "$res/durations.json") &
    if [ "$phase" = x2e ]; then
      (on 1 "$second" timeout -s INT -k 20 545 python3 -m lora_verify mutants --generated -j "$((n - 1))" --compiled \
         --memcheck --parallel-sanity --budget 380 --cpu-json docs/mutants_generated_cpu.json --json "$res/mutants_gpu.json" \
         >"$res/mutants_gpu.log" 2>&1; say "generated mutants, compiled: exit $? $(grep 'kill rate' "$res/mutants_gpu.log")"
       cp "$res/mutants_gpu.json" .out/mutants_gpu_x2e.json) &
    else
      (WARMUP_MIN=1.0 BOX_MIN=1.5 RUNS="one_worker n_workers_bundle loops" on 1 "$second" timeout 545 \
         scripts/fuzz_throughput.sh "$res/fuzz" "$n" 8 >"$res/fuzz_throughput.log" 2>&1
       say "fuzz_throughput (boxes of 1.5 min after a 1-minute warm-up): exit $?"; cat "$res/fuzz_throughput.log" >>"$out/$phase.txt") &
    fi
    wait ;;
  x2h)  # GPU 0 the fuzzing sweep and a worker's profile; GPU 1 the generated mutants not yet compiled
    fuzz_sweep 0 "$first" &
    mutants_gpu 1 "$half" $((cores - 1)) &
    wait ;;
  x2g)  # the generated mutants not argued equivalent that x2e did not end (x2e's ran the equivalents), both GPUs
    python3 -c "import json, sys; from pathlib import Path; from lora_verify import generated
done = {m['name'] for m in json.loads(Path(sys.argv[1]).read_text())['mutants']} if Path(sys.argv[1]).exists() else set()
print(' '.join(m.name for m in generated.generate(Path('.')) if not m.equivalent and m.name not in done))" \
      .out/mutants_gpu_x2e.json >"$res/rest.txt"
    say "mutants left after x2e: $(wc -w <"$res/rest.txt")"
    [ -s "$res/rest.txt" ] && (CUDA_VISIBLE_DEVICES=0,1 taskset -c "0-$((cores - 9))" timeout -s INT -k 20 545 python3 -m lora_verify mutants \
       --generated --only $(cat "$res/rest.txt") -j $((cores - 10)) --compiled --memcheck --parallel-sanity --budget 430 \
       --cpu-json docs/mutants_generated_cpu.json --json "$res/mutants_gpu.json" >"$res/mutants_gpu.log" 2>&1
     say "generated mutants, compiled: exit $? $(grep 'kill rate' "$res/mutants_gpu.log")") &
    (TRITON_CACHE_DIR=$PWD/.out/triton-cache on 1 "$((cores - 8))-$((cores - 1))" timeout 545 scripts/fuzz_faults.sh \
       "$res/faults" 0.75 4 20 -k sgemm_lora_a >"$res/fuzz_faults.log" 2>&1; say "fuzz_faults (shrink's tests): exit $?"
     cat "$res/fuzz_faults.log" >>"$out/$phase.txt") &
    wait ;;
  esac
  ;;
esac
cp -r .out/mutants "$res/mutant_logs" 2>/dev/null
# a name no call's own `tar czf OUT/<phase>.tar.gz` can overwrite (the fourteenth and nineteenth sessions lost logs so)
tar czf "$out/$phase-all.tar.gz" -C "$out" "$phase" && rm -rf "${res:?}"
say "phase $phase done after $SECONDS s"

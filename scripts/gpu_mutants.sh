#!/usr/bin/env bash
# GPU verdicts of the generated mutants (docs/mutants.md, "Generated mutants: CPU and GPU"), from the repo root
# of a checkout on a CUDA machine (nothing installed):
#
#   scripts/gpu_mutants.sh OUTDIR [SAMPLE] [SEED] [BUDGET_S]     (defaults: 48 mutants, seed 0, 200 s)
#
# The seeded sample of lora_verify/generated.py's mutants that `lora-verify mutants --generated --sample SAMPLE
# --seed SEED` names, each in its own copy of the tree, compiled on the GPU under the CI profile: 16 pytest
# processes at a time share the device, the unmutated tree among them as a control that must survive. Each runs
# first the test that killed it on the CPU (docs/mutants_generated_cpu.json), alone; one the CPU killed by a
# MemoryViolation runs under compute-sanitizer's memcheck before that (closeness and layout agreement and that
# test, 10 examples each, each launch argument alone in its allocation: lora_verify/tight.py), and one that
# survives the selection and could stray (a mask, comparison or early exit changed) after it. No mutant starts
# after BUDGET_S seconds; each verdict is written as it ends, so a cut run keeps them.
# Out: OUTDIR/gpu.json (verdicts), OUTDIR/gpu.log, OUTDIR/compare.md (each mutant's CPU verdict from
# docs/mutants_generated_cpu.json beside its GPU one, disagreements first); logs in .out/mutants/.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/gpu_mutants.sh OUTDIR [SAMPLE] [SEED] [BUDGET_S]}; sample=${2:-48}; seed=${3:-0}
budget=${4:-200}
mkdir -p "$out"
python3 -m lora_verify mutants --generated --sample "$sample" --seed "$seed" -j 16 --compiled --memcheck \
  --parallel-sanity --budget "$budget" --cpu-json docs/mutants_generated_cpu.json --json "$out/gpu.json" \
  2>&1 | tee "$out/gpu.log"
python3 -m lora_verify mutants --compare docs/mutants_generated_cpu.json "$out/gpu.json" | tee "$out/compare.md"

#!/usr/bin/env bash
# The peers' kernels (sglang's csgmv and triton_v2, vLLM) through the property suite, compiled on a CUDA machine.
#
#   scripts/peers_gpu.sh OUTDIR [PROFILE] [WORKERS]     PROFILE: ci (default) or gpu; WORKERS: xdist workers (16)
#
# PEERS picks the adapters (default: all four, one after another), e.g. PEERS=sglang_csgmv. Kernel files come
# from LORA_SGLANG (a directory holding sglang/; default .carry/csgmv_tv2/sglang_peers) and LORA_VLLM (holding
# vllm/; default .carry/vllm). Writes OUTDIR/test_peers.log (the fixed-batch tests, all peers) and, per adapter,
# OUTDIR/NAME.log (the verdict table), NAME.json (verdicts) and failures_NAME/ (cases, if any).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/peers_gpu.sh OUTDIR [PROFILE] [WORKERS]}; profile=${2:-ci}; workers=${3:-16}
mkdir -p "$out"; out=$(realpath "$out")
export LORA_SGLANG=${LORA_SGLANG:-.carry/csgmv_tv2/sglang_peers} LORA_VLLM=${LORA_VLLM:-.carry/vllm}
peers=${PEERS:-sglang_csgmv sglang_triton_v2 vllm_batch_invariant vllm}
python3 -m pytest -q -p no:randomly -p no:benchmark tests/test_peers.py >"$out/test_peers.log" 2>&1
echo "test_peers: exit $? ($(tail -1 "$out/test_peers.log"))"
for name in $peers; do
  start=$SECONDS
  python3 -m lora_verify run --impl "lora_verify.adapters.$name" -n "$workers" --profile "$profile" \
    --verdicts-json "$out/$name.json" --case-dir "$out/failures_$name" -- -p no:randomly -p no:benchmark \
    >"$out/$name.log" 2>&1
  echo "$name: exit $? in $((SECONDS - start)) s ($(tail -1 "$out/$name.log"))"
done

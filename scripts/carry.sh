#!/usr/bin/env bash
# Fills .carry/ (git-ignored) with what a device session carries, from the registries and this repository:
#
#   scripts/carry.sh [MAIN_REV [BRANCH]]
#
# .carry/sglang/0.5.23   sglang 0.5.23's LoRA kernel files (PYTHONPATH, LORA_SGLANG, LORA_SGLANG_PEERS: the triton,
#                        csgmv and triton_v2 backends) and its version files, from `pip download --no-deps`
# .carry/vllm            vLLM 0.33.0's four Triton LoRA op files (LORA_VLLM; the wheel is ~340 MB, only these kept)
# .carry/main_tree       `git archive MAIN_REV impl` (default main, or origin/main in a clone): the kernels a branch
#                        is timed against (python -m benchmarks.compare .carry/main_tree)
# .carry/branch_tree     with BRANCH: `git archive BRANCH impl` (compare's --new), and .carry/branch_full the whole
#                        branch but its results folders (a tree to run the suite in: h27's H27_TREE, h28's H28_TREE)
# Each kernel folder gets a MANIFEST of its files' sha256. Nothing already present is downloaded again.
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:-$(git rev-parse -q --verify main >/dev/null && echo main || echo origin/main)}
python=${PYTHON:-python3}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

extract() {  # WHEEL DEST PATTERN...: the wheel's files matching any pattern (Python fnmatch), with a MANIFEST
  "$python" - "$@" <<'EOF'
import fnmatch, hashlib, sys, zipfile
from pathlib import Path
wheel, dest, patterns = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
lines = []
with zipfile.ZipFile(wheel) as z:
    for name in sorted(z.namelist()):
        if not name.endswith("/") and any(fnmatch.fnmatch(name, p) for p in patterns):
            data = z.read(name)
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(data)
            lines.append(f"{hashlib.sha256(data).hexdigest()}  {name}")
if not lines:
    sys.exit(f"{wheel}: no file matches {patterns}")
(dest / "MANIFEST").write_text("\n".join(lines) + "\n")
print(f"{dest}: {len(lines)} files")
EOF
}

if [ ! -d .carry/sglang/0.5.23/sglang ]; then
  "$python" -m pip download -q --no-deps sglang==0.5.23 -d "$tmp/sglang"
  mkdir -p .carry/sglang/0.5.23
  extract "$tmp"/sglang/sglang-*.whl .carry/sglang/0.5.23 'sglang/kernels/ops/lora/*' 'sglang/srt/lora/utils.py' \
    'sglang/_version.py' 'sglang/version.py'
fi
if [ ! -d .carry/vllm/vllm ]; then
  "$python" -m pip download -q --no-deps vllm==0.33.0 -d "$tmp/vllm"
  mkdir -p .carry/vllm
  extract "$tmp"/vllm/vllm-*.whl .carry/vllm $(printf 'vllm/lora/ops/triton_ops/%s.py ' lora_shrink_op lora_expand_op \
    kernel_utils utils)
fi
rm -rf .carry/main_tree && mkdir -p .carry/main_tree
git archive "$rev" impl | tar -x -C .carry/main_tree
echo ".carry/main_tree: impl/ of $rev ($(git rev-parse --short "$rev"))"
if [ -n "${2:-}" ]; then
  rm -rf .carry/branch_tree .carry/branch_full && mkdir -p .carry/branch_tree .carry/branch_full
  git archive "$2" impl | tar -x -C .carry/branch_tree
  git archive "$2" | tar -x -C .carry/branch_full --exclude=benchmarks/results --exclude=docs/results
  echo ".carry/branch_tree, .carry/branch_full: $2 ($(git rev-parse --short "$2"))"
fi
du -sh .carry

"""A pass stamp: proof that the whole suite passed on a tree, so that the mutation runner need not re-run it.

The mutation runner first checks that the unmutated tree passes its selection (else a kill means nothing).
CI runs the whole suite (``tox -e cpu``) on the same tree just before (``tox -e cpu,mutants-quick``), so the
pytest plugin writes, at the end of a session that passed every test of the default selection, a stamp
keyed by the tree's content (:func:`tree_digest`: every file the mutation runner copies), the hypothesis
settings and the package versions. The runner skips its sanity run only when the stamp matches its own
copy of the tree and environment exactly; an absent or stale stamp means the sanity run happens as before.
"""

import fnmatch
import hashlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Optional

# what the mutation runner leaves out of its copies: caches, logs, and carried third-party files
IGNORED = (".git", ".tox", ".hypothesis", ".out", ".ruff_cache", "__pycache__", ".carry", "build", "*.egg-info")
PATH = Path(".out") / "passed.json"  # under the repository root


def tree_digest(root: Path) -> str:
    """sha256 over the relative path and bytes of every file under ``root`` but ``IGNORED`` names."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not any(fnmatch.fnmatch(d, p) for p in IGNORED))
        for name in sorted(filenames):
            if name in IGNORED:
                continue
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            h.update(rel.encode() + b"\0")
            h.update(path.read_bytes())
            h.update(b"\0")
    return h.hexdigest()


def environment(max_examples: int, derandomize: bool, interpreter: bool) -> dict:
    """What besides the tree decides the outcome: settings, backend, implementation and versions."""
    import hypothesis
    import numpy
    import torch
    import triton

    return {
        "max_examples": max_examples,
        "derandomize": derandomize,
        "interpreter": interpreter,
        "python": platform.python_version(),
        "versions": [torch.__version__, triton.__version__, numpy.__version__, hypothesis.__version__],
    }


def write(root: Path, env: dict, seconds: float) -> Path:
    path = Path(root) / PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = {"tree": tree_digest(Path(root)), "env": env, "seconds": round(seconds, 1), "time": time.time()}
    path.write_text(json.dumps(stamp, indent=1) + "\n")
    return path


def matching(root: Path, tree: Path, env: dict) -> Optional[dict]:
    """The stamp under ``root`` if it was written for ``tree``'s content and ``env``; else None."""
    try:
        stamp = json.loads((Path(root) / PATH).read_text())
    except (OSError, ValueError):
        return None
    return stamp if stamp.get("env") == env and stamp.get("tree") == tree_digest(Path(tree)) else None

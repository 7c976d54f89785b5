"""Triton compiles in this process, seen through Triton's jit hooks: how many, how long, and whether one runs.

A kernel variant met for the first time (a new constexpr or a new divisibility class of an int argument) is
compiled, or loaded from Triton's disk cache, inside the call: seconds, against microseconds for the call
itself. The watchdog (``lora_verify.faults``) does not count that time against an example, and fuzzing
reports it apart from its steady-state rate (``STATS`` goes into each worker's progress file).
"""

import time

STATS = {"compiles": 0, "compile_s": 0.0}
_running = {"since": None}


def install() -> None:
    """Chains the counting hooks before any others already set (idempotent; a no-op without Triton)."""
    try:
        from triton import knobs
    except ImportError:
        return
    runtime = knobs.runtime
    if getattr(runtime.jit_cache_hook, "_lora_compiles", False):
        return
    before, after = runtime.jit_cache_hook, runtime.jit_post_compile_hook

    def started(*args, **kwargs):
        _running["since"] = time.monotonic()
        return before(*args, **kwargs) if before else False  # a true value would skip the compile

    def finished(*args, **kwargs):
        since, _running["since"] = _running["since"], None
        if since is not None:
            STATS["compiles"] += 1
            STATS["compile_s"] += time.monotonic() - since
        return after(*args, **kwargs) if after else None

    started._lora_compiles = True
    runtime.jit_cache_hook, runtime.jit_post_compile_hook = started, finished


def seconds() -> float:
    """Seconds spent compiling so far, the compile running now included."""
    since = _running["since"]
    return STATS["compile_s"] + (time.monotonic() - since if since is not None else 0.0)

"""How a call is timed, and the two yardsticks measured in the same run: copy bandwidth and the launch floor.

Every timing script of ``benchmarks/`` uses :func:`time_us`: the median over ten replays of a CUDA graph
holding as many calls as fill ``rep`` milliseconds (``triton.testing.do_bench_cudagraph``), so host
overhead is excluded; L2 is not flushed between calls. An implementation that does not claim CUDA-graph
capture is timed the same way without the graph (its host overhead then counts).
:func:`launch_grids` finds the grids a call launches its kernels on without launching them, so that an
empty kernel can be launched on the same grids (the floor of those launches).
"""

import importlib
import statistics

import torch
import triton
from triton.runtime.jit import KernelInterface

RETRIES = 10  # replays (or eager repetitions) whose median is the time, as do_bench_cudagraph does


def time_us(fn, rep: int, graph: bool = True) -> float:
    """Median time of one ``fn()`` in microseconds: under CUDA-graph replay, or eagerly when ``graph`` is False."""
    torch.cuda.synchronize()  # do_bench_cudagraph runs on a stream of its own, which waits for nothing
    if graph:
        return 1e3 * triton.testing.do_bench_cudagraph(fn, rep=rep, return_mode="median")
    fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(5):
        fn()
    end.record()
    torch.cuda.synchronize()
    calls = max(1, int(rep / max(start.elapsed_time(end) / 5, 1e-6)))
    times = []
    for _ in range(RETRIES):
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / calls)
    return 1e3 * statistics.median(times)


def copy_bandwidth(device) -> tuple:
    """(GB/s, how): a large device-to-device ``copy_``, bytes read + written over its median time."""
    for gib in (1.0, 0.25):
        try:
            n = int(gib * 2**30) // 2
            src = torch.empty(n, dtype=torch.bfloat16, device=device).normal_()
            dst = torch.empty_like(src)
            ms = triton.testing.do_bench(lambda d=dst, s=src: d.copy_(s), return_mode="median")
            del src, dst
            torch.cuda.empty_cache()
            return 2 * n * 2 / (ms * 1e-3) / 1e9, f"{gib:g} GiB device-to-device copy_, read + write, do_bench median"
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
    raise RuntimeError("could not allocate a copy buffer of 256 MiB")


@triton.jit
def _empty_kernel(ptr):
    pass


def launch_floor(device, rep: int) -> float:
    """One empty ``@triton.jit`` kernel on a 1x1x1 grid, timed like every call."""
    ptr = torch.zeros(1, device=device)
    return time_us(lambda: _empty_kernel[(1, 1, 1)](ptr), rep)


def empty_launches(grids, ptr):
    """A call that launches the empty kernel once on each grid of ``grids``."""

    def call():
        for grid in grids:
            _empty_kernel[tuple(grid)](ptr)

    return call


class _GridRecorder:
    """Stands in for a ``@triton.jit`` kernel: ``kernel[grid](...)`` appends ``(name, grid)``, launches nothing."""

    def __init__(self, name: str, launches: list):
        self.name, self.launches = name, launches

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            self.launches.append((self.name, tuple(grid(kwargs) if callable(grid) else grid)))

        return launch


def launch_grids(module_name: str, call) -> list:
    """The grids ``call()`` launches the kernels defined in ``module_name`` on, in order, found without launching.

    Every ``@triton.jit`` function defined in the module is replaced by a recorder for the duration (helpers
    that kernels call are never launched from the host, so they record nothing).
    """
    module = importlib.import_module(module_name)
    kernels = {
        name: value
        for name, value in vars(module).items()
        if isinstance(value, KernelInterface) and getattr(value.fn, "__module__", None) == module_name
    }
    launches: list = []
    for name in kernels:
        setattr(module, name, _GridRecorder(name, launches))
    try:
        call()
    finally:
        for name, kernel in kernels.items():
            setattr(module, name, kernel)
    if not launches:
        raise RuntimeError(f"{module_name}: no kernel launched")
    return [[int(g) for g in grid] + [1] * (3 - len(grid)) for _, grid in launches]


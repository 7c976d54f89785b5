"""Every tensor argument of a Triton launch in an allocation of its own, just its view's span: what memcheck needs.

The suite puts batch-info fields, ``x``, ``base`` and outputs inside poisoned margins or guard bands, all in one
allocation, so that a stray access shows by value. compute-sanitizer's memcheck reports only an access outside
every allocation, so a stray that lands in a margin is invisible to it (the interpreter's bounds layer sees it on
the CPU: ``lora_verify.interpreter.bounds``). While installed (``LORA_TIGHT=1``: ``scripts/sanitize.sh`` and the
mutation runner's memcheck tier), each launch is given copies of its tensor arguments, each alone in a new
allocation that holds the view from its first element to its last (with the caching allocator off,
``PYTORCH_NO_CUDA_MEMORY_CACHING=1``, one ``cudaMalloc`` of exactly that size), and the copies are copied back
after the launch. An access before a view's first element or past its last then leaves every allocation, and
memcheck reports it (its ``--padding`` keeps a neighbouring allocation from hiding it).

Not covered: gaps inside a strided view's span (``x``'s padding columns), which the bounds layer covers on the
CPU. Left as they are: empty tensors, tensors with a zero stride, arguments whose span overlaps another
argument's (separate copies would break their aliasing), and every launch during a CUDA graph capture. Arguments
that are disjoint views of one allocation (the suite moves a case's tensors to the GPU in one copy) are moved
each alone: a kernel cannot reach one from the other without leaving its view.
"""

import torch
from triton.runtime.interpreter import InterpretedFunction
from triton.runtime.jit import JITFunction

_ORIGINAL = {}  # launcher class -> its own run


def span(t: torch.Tensor) -> int:
    """Elements from the view's first to its last (non-negative strides)."""
    return 1 + sum((n - 1) * s for n, s in zip(t.shape, t.stride(), strict=True))


def tight_copy(t: torch.Tensor) -> torch.Tensor:
    """A copy of ``t`` with its strides, alone in an allocation of ``span(t)`` elements."""
    return torch.empty(span(t), dtype=t.dtype, device=t.device).as_strided(t.shape, t.stride()).copy_(t)


def _capturing() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()


def _bytes(t: torch.Tensor) -> tuple:
    """The byte range ``[first, past the last)`` of ``t``'s view."""
    return t.data_ptr(), t.data_ptr() + span(t) * t.element_size()


def _copies(values) -> dict:
    """id -> (argument, its tight copy), for each tensor argument that may be moved: not empty, no zero stride,
    and its span shares no byte with another argument's."""
    tensors = {id(v): v for v in values if isinstance(v, torch.Tensor) and v.numel()}
    ranges = {key: _bytes(t) for key, t in tensors.items()}

    def alone(key):
        first, end = ranges[key]
        return all(end <= f or e <= first for other, (f, e) in ranges.items() if other != key)
    return {key: (t, tight_copy(t)) for key, t in tensors.items() if min(t.stride(), default=1) > 0 and alone(key)}


def _run(cls):
    original = _ORIGINAL[cls]

    def run(self, *args, grid, warmup, **kwargs):
        if warmup or _capturing():
            return original(self, *args, grid=grid, warmup=warmup, **kwargs)
        copies = _copies([*args, *kwargs.values()])

        def moved(v):
            return copies[id(v)][1] if id(v) in copies else v

        result = original(self, *map(moved, args), grid=grid, warmup=warmup,
                          **{k: moved(v) for k, v in kwargs.items()})
        for t, copy in copies.values():
            t.copy_(copy)
        return result
    return run


def install() -> None:
    """Moves every launch's tensor arguments from now on, compiled or interpreted (idempotent)."""
    for cls in (JITFunction, InterpretedFunction):
        if cls not in _ORIGINAL:
            _ORIGINAL[cls] = cls.run
            cls.run = _run(cls)


def uninstall() -> None:
    for cls, run in _ORIGINAL.items():
        cls.run = run
    _ORIGINAL.clear()

"""Memory nobody wrote, made visible: every tensor allocated uninitialised while an implementation runs is filled
with one of two poisons (``PATTERNS``: NaN and the largest integer, or -1.0 and the smallest).

An output must not depend on the contents of a fresh ``torch.empty`` buffer (a kernel that accumulates into it as
if it were zeroed, or sums cells no program wrote). Such memory is often zero on the CPU (fresh pages) and stale
on a GPU (the caching allocator's last tenant), so the bug hides where it is tested. The ``deterministic``
property (``lora_verify.properties``) makes its two calls under the two patterns: an output that reads such
memory differs between them, and an integer read as an index goes out of bounds. One pattern would not do: the
first call's buffers may be the last poisoned call's, freed and handed out again with the same poison.

It covers ``torch.empty``, ``torch.empty_like``, ``torch.empty_strided`` and ``Tensor.new_empty`` looked up at
call time (a module that bound ``empty`` at import keeps the real one).
"""

import contextlib

import torch

FACTORIES = ("empty", "empty_like", "empty_strided")


PATTERNS = (  # (floating, integer: of its dtype's iinfo), far apart
    (float("nan"), "max"),
    (-1.0, "min"),
)


def poison(t: torch.Tensor, pattern: int = 0) -> torch.Tensor:
    """``t`` filled with ``PATTERNS[pattern]``'s value for its dtype (floating and complex, or integer); booleans as
    they are."""
    floating, integer = PATTERNS[pattern]
    if t.is_floating_point() or t.is_complex():
        t.fill_(floating)
    elif t.dtype != torch.bool:
        t.fill_(getattr(torch.iinfo(t.dtype), integer))
    return t


def _poisoning(make, pattern):
    def made(*args, **kwargs):
        return poison(make(*args, **kwargs), pattern)

    return made


@contextlib.contextmanager
def poisoned(pattern: int = 0):
    """Within it, the uninitialised factories return tensors filled with ``PATTERNS[pattern]`` (the module
    docstring)."""
    saved = {name: getattr(torch, name) for name in FACTORIES}
    new_empty = torch.Tensor.new_empty
    for name, make in saved.items():
        setattr(torch, name, _poisoning(make, pattern))
    torch.Tensor.new_empty = _poisoning(new_empty, pattern)
    try:
        yield
    finally:
        for name, make in saved.items():
            setattr(torch, name, make)
        torch.Tensor.new_empty = new_empty

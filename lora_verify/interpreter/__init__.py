"""Triton's CPU interpreter made to compute as the compiler does, and checked like compute-sanitizer.

``bf16``: bfloat16 arithmetic on values, not on the raw bits the interpreter stores. ``semantics``: Python
logic in kernels as the compiler lowers it (``and``/``or``/``not`` elementwise on tensors, bool arguments,
integer division by zero refused). ``bounds``: every load and store must stay inside the tensor argument its
pointer came from, no two programs of a launch may store to one element, and none may load what another stored
unless an atomic orders the two. ``order``: a launch's programs run last to first (a GPU promises no order).
``patching``: ``triton.language`` patched once per launch, not on every device-function call (the same results,
faster). :func:`install` turns all on (idempotent).
"""

from lora_verify.interpreter import bf16, bounds, order, patching, semantics


def install() -> None:
    bf16.install()
    bounds.install()
    semantics.install()
    order.install()
    patching.install()

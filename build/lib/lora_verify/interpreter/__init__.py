"""Triton's CPU interpreter made to compute as the compiler does, and checked like compute-sanitizer.

``bf16``: bfloat16 arithmetic on values, not on the raw bits the interpreter stores. ``bounds``: every
load and store must stay inside the tensor argument its pointer came from, and no two programs of a
launch may store to one element. :func:`install` turns both on (idempotent).
"""

from lora_verify.interpreter import bf16, bounds


def install() -> None:
    bf16.install()
    bounds.install()

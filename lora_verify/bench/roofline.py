"""The memory roofline: the bytes an operation must move, over the copy bandwidth measured in the same run.

Every byte read or written once: ``x`` (S x ``x_cols``), the weights of the adapters present only
(``w_shape`` each), and the output: a shrink writes its S x (stack x R) result; an expand reads and writes
``base`` (S x ``out_cols``). Shapes come from the operation table.
"""

import math


def bytes_moved(bench_op, shape, present: int, element_size: int = 2) -> int:
    op, dims, R, S = bench_op.op, bench_op.dims, shape.rank, shape.tokens
    w_shape = op.w_shape(dims, R)
    out = 2 * S * op.out_cols(dims) if op.in_place else S * w_shape[0]
    return (S * op.x_cols(dims, R) + present * math.prod(w_shape) + out) * element_size


def roofline_us(nbytes: int, copy_gbps: float) -> float:
    return nbytes / (copy_gbps * 1e3)

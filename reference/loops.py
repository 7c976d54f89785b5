"""A loop over segments for each operation, computing in float64 by default.

bf16 (and fp16) products are exact in float64 and a float64 sum of K of them
is off by at most K * 2^-53 of the magnitude, so the result stands in for the
exact value (the suite's error bound still counts that term). Each function
takes the entry point's arguments and returns ``(out, defined)``: the value in
``accum`` dtype, and a bool mask of the cells SPEC.md defines.
"""

import torch


def segments(batch_info):
    """Yields ``(rows, slot)`` per segment: the physical rows in logical order."""
    lens = batch_info.seg_lens.tolist()
    starts = batch_info.seg_indptr.tolist()
    slots = batch_info.weight_indices.tolist()
    perm = None if batch_info.permutation is None else batch_info.permutation.cpu()
    for i in range(batch_info.num_segments):
        logical = torch.arange(starts[i], starts[i] + lens[i])
        rows = logical if perm is None else perm[logical].long()
        yield rows, slots[i]


def sgemm_lora_a_fwd(x, weights, batch_info, stack_num=1, accum=torch.float64):
    """``y[t, :stack_num*r] = x[t] @ W[a, :stack_num*r, :].T``; the rest of the row is undefined."""
    S = x.shape[0]
    out = torch.zeros((S, weights.shape[1]), dtype=accum)
    defined = torch.zeros((S, weights.shape[1]), dtype=torch.bool)
    ranks = batch_info.lora_ranks.tolist()
    x, weights = x.cpu(), weights.cpu()
    for rows, a in segments(batch_info):
        n = stack_num * ranks[a]
        xs = x[rows].to(accum)
        out[rows, :n] = xs @ weights[a, :n, :].to(accum).T
        defined[rows, :n] = True
    return out, defined


def _stacked_expand(x, weights, batch_info, offsets, base_output, accum):
    S = x.shape[0]
    n_out = weights.shape[1]
    out = torch.zeros((S, n_out), dtype=accum) if base_output is None else base_output.cpu().to(accum)
    ranks = batch_info.lora_ranks.tolist()
    scalings = batch_info.scalings.cpu().to(accum)
    x, weights = x.cpu(), weights.cpu()
    for rows, a in segments(batch_info):
        r = ranks[a]
        if r == 0:
            continue  # no LoRA: the row keeps base
        xs = x[rows].to(accum)
        for j in range(len(offsets) - 1):
            lo, hi = offsets[j], offsets[j + 1]
            w = weights[a, lo:hi, :r].to(accum)
            out[rows, lo:hi] += scalings[a] * (xs[:, j * r : (j + 1) * r] @ w.T)
    return out, torch.ones((S, n_out), dtype=torch.bool)


def sgemm_lora_b_fwd(x, weights, batch_info, base_output=None, accum=torch.float64):
    """``out[t] = base[t] + s[a] * (x[t, :r] @ W[a, :, :r].T)``."""
    return _stacked_expand(x, weights, batch_info, [0, weights.shape[1]], base_output, accum)


def qkv_lora_b_fwd(x, qkv_lora_b, batch_info, output_offset, max_qkv_out_dim, base_output=None, accum=torch.float64):
    """Three slices at ``output_offset``; slice j reads ``x[t, j*r:(j+1)*r]``."""
    del max_qkv_out_dim  # a launch-size hint; the value does not depend on it
    return _stacked_expand(x, qkv_lora_b, batch_info, output_offset.tolist(), base_output, accum)


def gate_up_lora_b_fwd(x, gate_up_lora_b, batch_info, output_dim, base_output=None, accum=torch.float64):
    """Two slices of width ``output_dim``."""
    return _stacked_expand(x, gate_up_lora_b, batch_info, [0, output_dim, 2 * output_dim], base_output, accum)

"""The reference of ``reference/loops.py``, vectorised on the inputs' device: real model shapes on a GPU.

Same arguments, value and defined cells as the loops (float64 by default), without a Python loop over the
segments: each token's segment, slot, rank and scaling are gathered at once from the batch info, and each
slot present is one float64 matmul of all its rows (a loop over at most the pool's slots). Per token the
sum is the same products in float64 as the loops', possibly added in another order (the matmul of more
rows may block K differently), so the two agree to float64 rounding:
``lora_verify.bounds.reference_agreement`` derives by how much, and ``tests/test_reference.py`` checks it.
"""

import torch


def token_slots(batch_info):
    """``(rows, slots)``: the physical row of every live token and its slot, on the batch info's device."""
    n = batch_info.num_segments
    lens = batch_info.seg_lens[:n].long()
    starts = batch_info.seg_indptr[:n].long()
    segment = torch.repeat_interleave(torch.arange(n, device=lens.device), lens)
    first = torch.cumsum(lens, 0) - lens  # each segment's first position among the gathered tokens
    logical = starts[segment] + torch.arange(segment.numel(), device=lens.device) - first[segment]
    perm = batch_info.permutation
    rows = logical if perm is None else perm[logical].long()
    return rows, batch_info.weight_indices[:n].long()[segment]


def _by_slot(batch_info):
    """Yields ``(rows, slot, rank, scaling)`` for each slot with rows in the batch."""
    rows, slots = token_slots(batch_info)
    ranks, scalings = batch_info.lora_ranks.tolist(), batch_info.scalings
    for a in torch.unique(slots).tolist():
        yield rows[slots == a], a, ranks[a], scalings[a]


def sgemm_lora_a_fwd(x, weights, batch_info, stack_num=1, accum=torch.float64):
    """``y[t, :stack_num*r] = x[t] @ W[a, :stack_num*r, :].T``; the rest of the row is undefined."""
    S, N = x.shape[0], weights.shape[1]
    out = torch.zeros((S, N), dtype=accum, device=x.device)
    defined = torch.zeros((S, N), dtype=torch.bool, device=x.device)
    for rows, a, r, _ in _by_slot(batch_info):
        n = stack_num * r
        out[rows, :n] = x[rows].to(accum) @ weights[a, :n, :].to(accum).T
        defined[rows, :n] = True
    return out, defined


def _stacked_expand(x, weights, batch_info, offsets, base_output, accum):
    S, n_out = x.shape[0], weights.shape[1]
    if base_output is None:
        out = torch.zeros((S, n_out), dtype=accum, device=x.device)
    else:
        out = base_output.to(accum, copy=True)
    for rows, a, r, s in _by_slot(batch_info):
        if r == 0:
            continue  # no LoRA: the row keeps base
        xs = x[rows].to(accum)
        for j in range(len(offsets) - 1):
            lo, hi = offsets[j], offsets[j + 1]
            out[rows, lo:hi] += s.to(accum) * (xs[:, j * r : (j + 1) * r] @ weights[a, lo:hi, :r].to(accum).T)
    return out, torch.ones((S, n_out), dtype=torch.bool, device=x.device)


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

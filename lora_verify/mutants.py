"""The planted-bug catalogue: small, named, realistic edits of ``impl/`` that the suite must catch.

Each :class:`Mutant` replaces one exact piece of source text (it must occur exactly once, so that a
change of ``impl/`` that moves it fails loudly instead of planting nothing) with a buggy version.
``lora_verify/mutate.py`` applies one at a time to a copy of the tree (``@triton.jit`` reads the kernel's
source text, so the edit has to be on disk) and runs the CI profile against it. A mutant that no
input of the contract can tell apart from the original carries the reason in ``equivalent``; every
other survivor is a gap of the suite. docs/mutants.md has the results.
"""

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str  # relative to the repository root
    find: str  # occurs exactly once in ``file``
    replace: str
    what: str  # the planted bug, one line
    quick: bool = False  # in the ``--quick`` subset
    fault: str = ""  # "crash" or "hang": it takes the checking process down on a GPU (lora_verify.faults)
    equivalent: str = ""  # why no test at the contract's sizes can kill it (empty: it must be killed)

    def planted(self, text: str) -> str:
        """``text`` (the source of ``file``) with the bug planted."""
        count = text.count(self.find)
        assert count == 1, f"mutant {self.name}: {self.find!r} occurs {count} times in {self.file}, expected once"
        return text.replace(self.find, self.replace)

    def apply(self, root: Path) -> None:
        """Plants the bug in the tree at ``root`` (a copy, never the working tree)."""
        path = root / self.file
        path.write_text(self.planted(path.read_text()))


SEG, SHRINK, EXPAND, ROUTING, BATCH = (
    f"impl/{m}.py" for m in ("segments", "shrink", "expand", "routing", "batch_info")
)
INT32_ROWS = (
    "row * stride stays below 2^31 at the contract's test sizes (at most 8 x 40 rows, rows of at most 600 "
    "elements): it wraps only past 2^31 elements of x or of the output (4 GiB of bf16); the GPU test "
    "tests/test_large_offsets.py kills it there"
)
MASKED_EXIT = "a tile starting exactly at n_valid has n_mask all false: it loads and stores nothing either way"

MUTANTS = [
    # ---- impl/segments.py: which rows a program serves (shared by every kernel)
    Mutant("seg_row_mask_le", SEG, "mask = offs < seg_len", "mask = offs <= seg_len",
           "row mask off by one: each row tile serves one row past its segment", quick=True),
    Mutant("seg_perm_no_start", SEG, "permutation + seg_start + offs", "permutation + offs",
           "sorted layout reads permutation from 0 for every segment, not from the segment's start"),
    Mutant("seg_perm_ignored", SEG, "rows = tl.load(permutation + seg_start + offs, mask=live, other=0)",
           "rows = seg_start + offs", "sorted layout serves logical positions as rows: the permutation is never read"),
    Mutant("seg_perm_load_unmasked", SEG, "rows = tl.load(permutation + seg_start + offs, mask=live, other=0)",
           "rows = tl.load(permutation + seg_start + offs)",
           "permutation read without a mask: the last segment's tile reads past the live entries"),
    Mutant("seg_perm_live_le", SEG, "seg_start + offs < tl.load(seg_indptr + num_segments)",
           "seg_start + offs <= tl.load(seg_indptr + num_segments)",
           "permutation read one entry past the live count (past the buffer when the batch fills it)"),
    Mutant("seg_rows_int32", SEG, "return rows.to(tl.int64), mask\n", "return rows, mask\n",
           "row offsets in int32: row * stride wraps on batches past 2^31 elements", equivalent=INT32_ROWS),
    Mutant("tile_first_exclusive", SEG, "tl.sum(((first_tiles <= tile)", "tl.sum(((first_tiles < tile)",
           "sorted tile lookup off by one: a segment's first tile is taken for the segment before it"),
    Mutant("tile_first_unshifted", SEG, "first_tiles = starts // BLOCK_S + idx", "first_tiles = starts // BLOCK_S",
           "sorted tile lookup without the one-tile shift per segment: segments in one 16-row block collide"),
    Mutant("tile_offset_unshifted", SEG, "tile - (seg_start // BLOCK_S + seg)", "tile - seg_start // BLOCK_S",
           "sorted tile lookup: a tile's row offset counted without its segment's shift"),
    Mutant("tile_count_padding", SEG, "& (idx < num_segments)).to(tl.int32)", ").to(tl.int32)",
           "sorted tile lookup counts the padding lanes past num_segments as segments"),
    Mutant("tile_grid_no_partials", SEG, "triton.cdiv(num_rows, block_s) + num_segments",
           "triton.cdiv(num_rows, block_s)",
           "sorted grid and tile table sized for full tiles only: each segment's partial tile can push the last out"),
    Mutant("seg_row_tiles_floor", SEG, "triton.cdiv(max(batch_info.max_len, 1), block_s)",
           "max(batch_info.max_len, 1) // block_s", "grid rows rounded down: the last partial row tile never runs"),
    Mutant("seg_slot_is_segment", SEG, "slot = tl.load(weight_indices + seg)", "slot = seg",
           "a segment's slot taken as its index (right only when segment i uses slot i, as routing's do)"),
    Mutant("table_rows_unpermuted", SEG,
           "rows = tl.load(permutation + start + tl.arange(0, BLOCK_S), mask=mask, other=0)",
           "rows = (start + tl.arange(0, BLOCK_S))",
           "tile-table path serves logical positions as rows: the permutation is never read", quick=True),
    Mutant("table_mask_le", SEG, "mask = tl.arange(0, BLOCK_S) < rows_left",
           "mask = tl.arange(0, BLOCK_S) <= rows_left",
           "tile-table row mask off by one: each tile serves one row past its count"),
    Mutant("table_entry_stride", SEG, "entry = tiles + tile * 3", "entry = tiles + tile",
           "tile-table rows read with stride 1 instead of 3: fields of neighbouring tiles mixed"),
    Mutant("table_count_field", SEG, "rows_left = tl.load(entry + 1)", "rows_left = tl.load(entry + 2)",
           "tile-table row count read from the slot field"),
    # ---- impl/shrink.py
    Mutant("shrink_k_mask_le", SHRINK, "k_mask = offs_k < K - k", "k_mask = offs_k <= K - k",
           "k mask off by one: one input column past K joins the dot product"),
    Mutant("shrink_n_mask_le", SHRINK, "n_mask = offs_n < n_valid", "n_mask = offs_n <= n_valid",
           "n mask off by one: stores one column past stack_num*r (out of the row when r == R)"),
    Mutant("shrink_exit_gt", SHRINK, "n_tile * BLOCK_N >= n_valid", "n_tile * BLOCK_N > n_valid",
           "n-tile early exit off by one", equivalent=MASKED_EXIT),
    Mutant("shrink_rank_not_stacked", SHRINK, "n_valid = stack_num * tl.load(lora_ranks + slot)",
           "n_valid = tl.load(lora_ranks + slot)", "stacked shrink computes only the first slice's r columns"),
    Mutant("shrink_slot_stride_n", SHRINK, "slot.to(tl.int64) * w_stride_l", "slot.to(tl.int64) * w_stride_n",
           "weight pool indexed with the row stride: slot a reads row a of slot 0"),
    Mutant("shrink_partial_stride_of_x", SHRINK, "rows[:, None] * out_stride_row", "rows[:, None] * x_stride",
           "the output's (partials' or y's) row stride copied from x (K instead of stack_num*R)"),
    Mutant("shrink_w_not_advanced", SHRINK, "        w_ptrs += BLOCK_K\n", "",
           "K loop advances x but not the weights: every K block multiplies the first weight block"),
    Mutant("shrink_bf16_partials", SHRINK, "acc += tl.dot(xs, ws)",
           "acc += tl.dot(xs, ws).to(tl.bfloat16).to(tl.float32)",
           "each K block's partial product rounded to bf16 before accumulating (an input-dtype accumulator)"),
    Mutant("shrink_w_load_k_mask", SHRINK, "ws = tl.load(w_ptrs, mask=k_mask[:, None] & n_mask[None, :]",
           "ws = tl.load(w_ptrs, mask=k_mask[:, None]",
           "weight load without the n mask: reads rows past stack_num*r (and past the pool for the last slot)"),
    Mutant("shrink_x_far_past", SHRINK, "x_ptrs = x + rows[:, None] * x_stride + k_start + offs_k[None, :]",
           "x_ptrs = x + rows[:, None] * x_stride + k_start + offs_k[None, :] + (rows[:, None] > 30).to(tl.int64) * "
           "(1 << 35)", "x read 2^35 elements (64 GiB) past its row for rows past 30: an illegal address on a GPU "
           "(kills the process's CUDA context), MemoryViolation in the interpreter", fault="crash"),
    Mutant("shrink_k_loop_endless", SHRINK, "for k in range(k_start, k_end, BLOCK_K):",
           "for k in range(k_start, k_end + (tl.max(rows) > 30).to(tl.int64) * (1 << 40), BLOCK_K):",
           "K loop runs 2^40 past K when a tile holds a row past 30: a kernel that never ends (hangs)",
           fault="hang"),
    Mutant("shrink_split_by_batch", SHRINK, "    splits, n_tiles = triton.cdiv(K, k_split)",
           "    k_split = k_split if S > 16 else k_split // 2\n    splits, n_tiles = triton.cdiv(K, k_split)",
           "finer K splits for small batches (to fill the GPU): a token's summation order depends on its batch-mates"),
    Mutant("shrink_split_start_missing", SHRINK, "x_stride + k_start + offs_k[None, :]", "x_stride + offs_k[None, :]",
           "every split reads x from column 0 (the weights from its own chunk)"),
    Mutant("shrink_split_runs_to_k", SHRINK, "tl.minimum(k_start + k_split, K)", "K",
           "each split runs to the end of K: later chunks are counted several times"),
    Mutant("shrink_sum_drops_last_split", SHRINK, "tl.where(s < splits, total + part, total)",
           "tl.where(s < splits - 1, total + part, total)",
           "the split sum leaves out the last split"),
    Mutant("shrink_table_grid_no_splits", SHRINK, "per_tile = n_tiles * splits", "per_tile = n_tiles",
           "tile-major grid decoded without the splits: programs read tiles past the table, split 0 only"),
    Mutant("group_slot_unfiltered", SHRINK, "row_mask & (slots == slot)", "row_mask",
           "a grouped program's pass for one slot also serves its other slots' rows (with that slot's weights)"),
    Mutant("group_grid_floor", SHRINK, "triton.cdiv(tiles, group) * n_tiles", "tiles // group * n_tiles",
           "grouped grid rounded down: the table's last tiles get no program"),
    Mutant("fused_one_split", SHRINK, "split_end = ((k + BLOCK_K) % k_split == 0) | (k + BLOCK_K >= K)",
           "split_end = k + BLOCK_K >= K",
           "a program that sums its splits runs all of K as one: the same sum in another order than the partials'"),
    Mutant("fused_split_dropped", SHRINK, "tl.where(k < k_split, acc, total + acc)",
           "tl.where(k < k_split, acc, total)",
           "a program that sums its splits keeps the first only"),
    Mutant("splits_summed_into_empty", SHRINK, "total = tl.load(partials + offs, mask=live, other=0.0)",
           "total = tl.load(y + offs, mask=live, other=0.0).to(tl.float32) + tl.load(partials + offs, mask=live)",
           "the splits' sum starts from the output buffer as if it were zeroed (torch.empty: stale memory)"),
    Mutant("group_past_table", SEG, "in_table = first + pos // BLOCK_S < num_tiles", "in_table = first >= 0",
           "a grouped program reads tile-table rows past its end"),
    # ---- impl/expand.py (plain, qkv and gate/up expand)
    Mutant("expand_no_rank0_exit", EXPAND, "if rank == 0 or rows_left <= 0:", "if rows_left <= 0:",
           "no rank-0 exit: rank-0 rows get base + 0 * s (turns a -0.0 base into +0.0)", quick=True),
    Mutant("expand_k_mask_le", EXPAND, "k_mask = offs_k < rank", "k_mask = offs_k <= rank",
           "rank mask off by one: reads x column r (next slice or shrink's undefined cells) and W column r"),
    Mutant("expand_w_rank_unmasked", EXPAND,
           "ws = tl.where(k_mask[:, None], tl.load(w_ptrs, mask=n_mask[None, :], other=0.0), 0.0)",
           "ws = tl.load(w_ptrs, mask=n_mask[None, :], other=0.0)",
           "weight block loaded whole (R columns) and never masked to the slot's rank: the padding meets zeros of x"),
    Mutant("expand_x_load_rows_only", EXPAND, "xs = tl.load(x_ptrs, mask=row_mask[:, None] & k_mask[None, :]",
           "xs = tl.load(x_ptrs, mask=row_mask[:, None]",
           "x load without the rank mask: reads x columns past the slot's slice (a masked-off W row meets them)"),
    Mutant("expand_column_groups_floor", EXPAND, "triton.cdiv(n_tiles_per_slice, group)", "n_tiles_per_slice // group",
           "column groups per slice rounded down: a slice's last column tiles get no program"),
    Mutant("expand_column_group_unscaled", EXPAND, "% groups_per_slice * group_size", "% groups_per_slice",
           "a program's first column tile is its group's index, not index x group size: groups overlap, tiles lost"),
    Mutant("expand_column_end_unclipped", EXPAND, "n_end = tl.minimum(n_first + group_size, tl.cdiv(n_width, BLOCK_N))",
           "n_end = n_first + group_size", "a program's last column tiles run past its slice's width",
           equivalent="past the slice's width n_mask is all false: those tiles load and store nothing"),
    Mutant("expand_n_mask_le", EXPAND, "n_mask = offs_n < n_width", "n_mask = offs_n <= n_width",
           "n mask off by one: writes one column past the slice (next slice or the row's end)"),
    Mutant("expand_store_mask_rows", EXPAND, "tl.store(out_ptrs, result.to(out.dtype.element_ty), mask=out_mask)",
           "tl.store(out_ptrs, result.to(out.dtype.element_ty), mask=row_mask[:, None])",
           "store masked by rows only: the last n tile writes past the slice"),
    Mutant("expand_slice_at_R", EXPAND, "j * rank + offs_k",
           "j * (x_stride // (tl.num_programs(2) // n_tiles_per_slice)) + offs_k",
           "stacked x slice j read at j*R (R recovered as x.shape[1] // num_slices), not at the rank-packed j*r"),
    Mutant("expand_x_stride_R", EXPAND, "x.stride(0),", "weights.shape[-1],",
           "x row stride passed as R: right for plain expand, wrong for stacked x (S, slices*R)"),
    Mutant("expand_scaling_dropped", EXPAND, "+ acc * scaling", "+ acc", "scaling never applied"),
    Mutant("expand_scaling_twice", EXPAND, "+ acc * scaling", "+ acc * scaling * scaling", "scaling applied twice"),
    Mutant("expand_scaling_bf16", EXPAND, "scaling = tl.load(scalings + slot)",
           "scaling = tl.load(scalings + slot).to(tl.bfloat16).to(tl.float32)",
           "scaling rounded to bf16 before use (off by up to 2^-9 relative)"),
    Mutant("expand_base_not_added", EXPAND, "result = base.to(tl.float32) + acc * scaling", "result = acc * scaling",
           "base output overwritten instead of accumulated into"),
    Mutant("expand_lora_rounded_first", EXPAND, "result = base.to(tl.float32) + acc * scaling",
           "result = base.to(tl.float32) + (acc * scaling).to(out.dtype.element_ty).to(tl.float32)",
           "LoRA term rounded to the output dtype before adding base (two roundings)", quick=True),
    Mutant("expand_w_slice_offset", EXPAND, "(n_start + offs_n[None, :]).to(tl.int64)", "offs_n[None, :].to(tl.int64)",
           "every slice multiplies slice 0's weights"),
    Mutant("expand_wrong_slice", EXPAND, "out_stride + n_start + offs_n", "out_stride + offs_n",
           "every slice accumulated into slice 0's columns"),
    Mutant("expand_qkv_uniform", EXPAND, "n_start = tl.load(output_offset + j)", "n_start = j * slice_width",
           "qkv slice j placed at j * max_qkv_out_dim, as if q, k, v had equal widths"),
    Mutant("expand_qkv_width_max", EXPAND, "n_width = tl.load(output_offset + j + 1) - n_start",
           "n_width = slice_width", "every qkv slice max_qkv_out_dim wide: the narrow k, v slices run over"),
    Mutant("expand_n_tiles_floor", EXPAND, "triton.cdiv(slice_width, block_n)", "slice_width // block_n",
           "n tiles per slice rounded down: a slice's last partial tile never runs"),
    # ---- impl/routing.py: the sorted layout
    Mutant("routing_unstable", ROUTING, "start + j + offs, mask=j + offs < rows)",
           "start + rows - 1 - j - offs, mask=j + offs < rows)",
           "each segment's rows written in reverse: rows of one slot leave ascending order"),
    Mutant("routing_reverse_tiebreak", ROUTING, "((other_slot == slot) & (idx < s))",
           "((other_slot == slot) & (idx > s))",
           "segments of one slot placed last to first: grouped by slot, but later sequences first", quick=True),
    Mutant("routing_sentinel_last_slot", ROUTING, "other=0), num_slots)\n", "other=0), num_slots - 1)\n",
           "rows past the live count routed to the last slot instead of the sentinel"),
    Mutant("routing_boundary_left", ROUTING,
           "    start = tl.load(seg_indptr + idx, mask=idx <= num_segments, other=0)\n"
           "    end = tl.where(real, tl.load(seg_indptr + idx + 1, mask=real, other=0), num_tokens)\n",
           "    start = tl.load(seg_indptr + idx, mask=idx <= num_segments, other=0) + tl.where(idx > 0, 1, 0)\n"
           "    end = tl.where(real, tl.load(seg_indptr + idx + 1, mask=real, other=0) + 1, num_tokens)\n",
           "segment boundaries one row late: the first row of a sequence goes to the one before"),
    Mutant("routing_lens_shifted", ROUTING, "count = tl.sum(tl.where(bins == a, counts, 0), 0)",
           "count = tl.sum(tl.where(bins == a + 1, counts, 0), 0)",
           "segment lengths off by one slot (the sentinel's count for the last)"),
    Mutant("routing_indptr_inclusive", ROUTING, "start = tl.sum(tl.where(bins < a, counts, 0), 0)",
           "start = tl.sum(tl.where(bins <= a, counts, 0), 0)",
           "seg_indptr one place early: segment a starts at the end of its own rows"),
    Mutant("tile_table_no_partials", ROUTING, "tiles = (counts + BLOCK_S - 1) // BLOCK_S", "tiles = counts // BLOCK_S",
           "tile table counts full tiles only: each slot's last partial tile is lost"),
    Mutant("tile_table_first_inclusive", ROUTING, "tl.where(bins < a, tiles, 0)", "tl.where(bins <= a, tiles, 0)",
           "tile table: each slot's tiles written after its own count, over the next slot's"),
    Mutant("tile_table_offset_unscaled", ROUTING, "tl.store(row, start + tile * BLOCK_S, mask=mask)",
           "tl.store(row, start + tile, mask=mask)",
           "tile table: a slot's second tile starts one row after its first"),
    Mutant("tile_table_count_unclamped", ROUTING, "tl.minimum(count - tile * BLOCK_S, BLOCK_S)",
           "count - tile * BLOCK_S",
           "tile table: a tile's count is all the rows left in its slot (the kernels mask to BLOCK_S anyway)"),
    Mutant("tile_table_idle_kept", ROUTING, "    for i in range(used, length, ROWS_PER_STEP):",
           "    for i in range(used, used, ROWS_PER_STEP):",
           "tile table: rows past the last tile are not zeroed (stale tiles of an earlier, larger batch stay live)"),
    Mutant("routing_constexpr_annotated", ROUTING, "ROWS_PER_STEP = tl.constexpr(64)",
           "ROWS_PER_STEP: tl.constexpr = 64",
           "a kernel's global constant annotated instead of made a tl.constexpr: the interpreter runs it, the GPU "
           "compiler refuses it", quick=True),
    # ---- impl/graph.py: the static buffers of CUDA-graph replay
    Mutant("graph_stale_tail", "impl/graph.py", "        static[n:].zero_()\n", "",
           "buffers written from device tensors keep the previous batch's tail: stale lengths and slots"),
    Mutant("graph_tiles_not_routed", "impl/graph.py", "sorted_.seg_indptr, sorted_.tiles)",
           "sorted_.seg_indptr, sorted_.tiles.clone())",
           "graph buffers: routing writes the tile table into a copy: the static table is never rewritten"),
    # ---- impl/batch_info.py: sizes of the launch
    Mutant("per_sequence_max_len_bs", BATCH, "max_len=max(seg_lens, default=0)", "max_len=len(seg_lens)",
           "per-sequence max_len set to the number of sequences"),
    Mutant("sorted_max_len_of_sequences", ROUTING, "max_len=num_tokens,", "max_len=batch.max_len,",
           "sorted max_len kept from the per-sequence batch: a slot's merged rows can outgrow it"),
]
BY_NAME = {m.name: m for m in MUTANTS}
assert len(BY_NAME) == len(MUTANTS), "mutant names must be unique"

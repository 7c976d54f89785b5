"""The regime recorder observes impl's launches without changing them, and the coverage check counts them right."""

import torch

import impl
from impl import shrink
from lora_verify import regimes
from lora_verify.report import Tally


def _shrink_once(device, K: int, lengths=(3, 2)):
    bi = impl.per_sequence(list(lengths), [0, 1], [4, 2], [1.0, 1.0], device)
    x = torch.randn(sum(lengths), K).to(device, torch.bfloat16)
    w = torch.randn(2, 4, K).to(device, torch.bfloat16)
    with regimes.recording() as launches:
        y = impl.sgemm_lora_a_fwd(x, w, bi)
    return launches, y, (x, w, bi)


def test_recording_sees_each_launch_and_leaves_the_kernels_as_they_were(device):
    launches, y, (x, w, bi) = _shrink_once(device, K=150)  # 3 splits of 64: not a power of two
    assert [launch.kernel for launch in launches] == ["_shrink_kernel", "_sum_splits_kernel"]
    assert launches[0].facts["splits"] == 3 and launches[1].facts["padded"]
    assert "run" not in vars(shrink._shrink_kernel)  # unwrapped again
    again = impl.sgemm_lora_a_fwd(x, w, bi)  # unobserved: the same bits on the defined cells (slot 1 has rank 2)
    assert torch.equal(y[:3], again[:3]) and torch.equal(y[3:, :2], again[3:, :2])


def test_regimes_taken_follow_the_split_count(device):
    three = regimes.taken(_shrink_once(device, K=150)[0])
    one = regimes.taken(_shrink_once(device, K=40)[0])
    assert "_shrink_kernel: splits not a power of two" in three - one
    assert "_shrink_kernel: 1 split of K" in one - three
    assert "_shrink_kernel: per-sequence rows" in one & three


def test_qkv_regimes_follow_the_slices_vector_boundaries(device):
    """A qkv slice whose first column and width are multiples of impl.expand.VECTOR (8) counts as the vector loop's,
    any other as the element loop's; the plain expand's slices are neither."""
    on, off = (f"_expand_kernel: qkv: a slice {where} 8-column boundaries ({loop})"
               for where, loop in (("on", "vectors"), ("off", "elements")))

    def taken(offsets):
        bi = impl.per_sequence([3, 2], [0, 1], [4, 2], [1.0, 1.0], device)
        x = torch.randn(5, 12).to(device, torch.bfloat16)
        w = torch.randn(2, offsets[-1], 4).to(device, torch.bfloat16)
        widths = [hi - lo for lo, hi in zip(offsets, offsets[1:], strict=False)]
        with regimes.recording() as launches:
            impl.qkv_lora_b_fwd(x, w, bi, torch.tensor(offsets, dtype=torch.int32, device=device), max(widths))
        return regimes.taken(launches)

    assert {on, off} & taken([0, 16, 24, 32]) == {on}
    assert {on, off} & taken([0, 8, 13, 18]) == {on, off}  # q on them, k and v off
    assert {on, off} & taken([0, 5, 10, 15]) == {off}
    with regimes.recording() as launches:
        impl.sgemm_lora_b_fwd(torch.randn(5, 4).to(device, torch.bfloat16),
                              torch.randn(2, 16, 4).to(device, torch.bfloat16),
                              impl.per_sequence([3, 2], [0, 1], [4, 2], [1.0, 1.0], device))
    assert not {on, off} & regimes.taken(launches)


def test_minimums_are_enforced_only_on_a_complete_ci_run():
    tally = Tally()
    for check in regimes.required_checks():
        tally.count_regimes(check, [])
    assert regimes.enforced(tally, "ci") and not regimes.enforced(tally, "dev")
    assert len(regimes.shortfalls(tally.regimes)) == len(regimes.REGIMES)  # nothing taken: every regime short
    partial = Tally()
    partial.count_regimes(regimes.ROUTING_CHECK, [])
    assert not regimes.enforced(partial, "ci")
    merged = Tally()
    merged.merge(tally.dump())
    assert merged.regime_checks == tally.regime_checks


def test_counts_merge_across_workers():
    a, b = Tally(), Tally()
    a.count_regimes("x", ["r1", "r2"])
    b.count_regimes("y", ["r1"])
    a.merge(b.dump())
    assert dict(a.regimes) == {"r1": 2, "r2": 1} and a.regime_checks == {"x", "y"}


def test_pipeline_depth_follows_rows_and_width_and_the_grouped_variant_forces_it(device, monkeypatch):
    """Small batches launch with NUM_STAGES; at STAGES_MIN_ROWS rows and N <= STAGES_MAX_N with STAGES_LONG (the
    threshold lowered so that 5 rows count), wider N never; the suite's grouped variant takes it on every batch."""
    from lora_verify.layouts import grouping_forced

    deep = f"_shrink_kernel: deeper pipeline ({shrink.STAGES_LONG} stages; compiled only)"
    assert deep not in regimes.taken(_shrink_once(device, K=40)[0])
    monkeypatch.setattr(shrink, "STAGES_MIN_ROWS", 5)
    assert deep in regimes.taken(_shrink_once(device, K=40)[0])  # N = 4 columns
    monkeypatch.setattr(shrink, "STAGES_MAX_N", 3)
    assert deep not in regimes.taken(_shrink_once(device, K=40)[0])
    monkeypatch.setattr(shrink, "STAGES_MAX_N", 16)
    monkeypatch.setattr(shrink, "STAGES_MIN_ROWS", 4096)
    with grouping_forced():
        assert deep in regimes.taken(_shrink_once(device, K=40)[0])
    assert shrink.STAGES_MIN_ROWS == 4096

"""Replay and triage one saved case: ``lora-verify replay CASE.json [--impl MODULE]``.

Prints, for the case's operation, every property in every layout on the
saved batch (verdict, worst error relative to its bound, the first failure
message with its worst cells), whether sorted and unsorted agree, whether a CUDA-graph replay equals the
eager call (on a GPU), and, when
the saved property fails, a minimised batch found by greedy shrinking
(drop sequences, shorten them, drop unused slots, lower dims and scales).
Exits 1 when the saved property fails, 0 when it holds. A case saved from a crash or hang
(``..._crash_*.json``, ``..._hang_*.json``: lora_verify.faults) crashes or hangs here too: the replay
then ends at once with exit status 1 after a line naming the fault.
"""

import argparse
import dataclasses
import importlib
import sys

import torch

import impl
from lora_verify import backend, profiles
from lora_verify.cases import load
from lora_verify.faults import ended_on_fault
from lora_verify.inputs import materialize
from lora_verify.layouts import defined_cells, run
from lora_verify.ops import OPS_BY_NAME
from lora_verify.properties import PROPERTIES, PROPERTIES_BY_NAME, bits
from lora_verify.report import Tally, format_ratio


def _fails(module, profile, batch, op, prop, layout, params, device):
    if "order" in params and any(i >= len(batch.seqs) for i in params["order"]):
        return False
    try:
        with ended_on_fault(device):
            prop.check(module, materialize(batch, op, device, profile.strided_x), layout, Tally(), profile, **params)
    except Exception:
        return True
    return False


def _smaller(batch, params):
    """Candidate batches one step simpler than ``batch``, simplest first."""
    seqs, replace = batch.seqs, dataclasses.replace
    if "order" not in params:  # the kept-sequence order indexes the sequences: keep them then
        for i in range(len(seqs)):
            yield replace(batch, seqs=seqs[:i] + seqs[i + 1 :])
    for i, seq in enumerate(seqs):
        for length in sorted({0, 1, seq.length // 2, seq.length - 1}):
            if length < seq.length:
                yield replace(batch, seqs=seqs[:i] + (replace(seq, length=length),) + seqs[i + 1 :])
    used = sorted({s.slot for s in seqs})
    if len(used) < len(batch.slots):
        remap = {old: new for new, old in enumerate(used)}
        slots = tuple(batch.slots[a] for a in used)
        yield replace(batch, slots=slots, seqs=tuple(replace(s, slot=remap[s.slot]) for s in seqs))
    d = batch.dims
    if d.k > 1:
        yield replace(batch, dims=replace(d, k=d.k // 2))
    for j, width in enumerate(d.widths):
        if width > 1:
            widths = tuple(w // 2 if k == j or len(set(d.widths)) == 1 else w for k, w in enumerate(d.widths))
            yield replace(batch, dims=replace(d, widths=widths))
    v = batch.values
    if v.awkward:
        yield replace(batch, values=replace(v, awkward=False))
    if v.x_exp or v.w_exp:
        yield replace(batch, values=replace(v, x_exp=0, w_exp=0))


def graph_agrees(module, case, layout):
    """Captures the case's op in a CUDA graph (``impl.GraphRunner``) and replays it: equal to eager bit for bit?"""
    b, op, fn = case.batch, case.op, getattr(module, case.op.entry)
    buffers = impl.GraphBatchBuffers.allocate(max(b.num_tokens, 1), max(len(b.seqs), 1), len(b.slots), case.x.device)

    def at_capacity(t):
        return torch.zeros((buffers.max_tokens, *t.shape[1:]), dtype=t.dtype, device=t.device)

    base = () if case.base is None else (case.base.clone(),)
    inputs = (case.x, case.w, *base)
    statics = (at_capacity(case.x), case.w, *map(at_capacity, base))

    def step(info, x, w, *out):
        return op.call(fn, x, w, info, b.dims, out[0] if out else None, case.offsets)

    runner = impl.GraphRunner(step, statics, buffers, layout)
    runner.load(
        [s.length for s in b.seqs],
        [s.slot for s in b.seqs],
        [s.rank for s in b.slots],
        [s.scaling for s in b.slots],
        *inputs,
    )
    replayed = runner.replay()
    eager = run(module, case, layout)
    defined = defined_cells(case).cpu()
    return torch.equal(bits(replayed)[defined], bits(eager)[defined])


def minimise(module, profile, batch, op, prop, layout, params, device, budget=300):
    """Greedy shrinking: take the first simpler batch that still fails, until none does."""
    tries = 0
    improved = True
    while improved and tries < budget:
        improved = False
        for candidate in _smaller(batch, params):
            tries += 1
            if _fails(module, profile, candidate, op, prop, layout, params, device):
                batch, improved = candidate, True
                break
    return batch


def triage(record, module, device, out=sys.stdout):
    profile = profiles.of(module)
    op, batch = OPS_BY_NAME[record["op"]], record["batch"]
    print(
        f"case: {record['op']} / {record['layout']} / {record['property']}  (saved on {record['device']}, "
        f"torch {record['versions']['torch']}, triton {record['versions']['triton']})",
        file=out,
    )
    for line in profile.summary():
        print(line, file=out)
    print(f"here: {device}", file=out)
    print(f"batch: {batch}", file=out)
    tally, messages = Tally(), {}
    for prop in PROPERTIES:
        for layout in prop.layouts:
            reason = prop.unclaimed(profile, layout)
            if reason:
                print(f"  NOT CLAIMED  {prop.name:<22} {layout:<9} {reason}", file=out)
                continue
            params = record["params"] if prop.name == record["property"] else {}
            if prop.params and not params:
                params = {"order": list(range(len(batch.seqs)))[::-1]}  # all sequences, reversed
            try:
                with ended_on_fault(device, out):
                    case = materialize(batch, op, device, profile.strided_x)
                    prop.check(module, case, layout, tally, profile, **params)
            except Exception as exc:
                messages[(prop.name, layout)] = str(exc).strip().splitlines()[0][:300]
    for (_, layout, name), row in sorted(tally.rows.items()):
        verdict = "PASS" if row["failures"] == 0 else "FAIL"
        worst = format_ratio(row["worst"]) if name == "close to reference" else "exact"
        print(f"  {verdict}  {name:<22} {layout:<9} worst err/bound {worst}", file=out)
        if (name, layout) in messages:
            print(f"        {messages.pop((name, layout))}", file=out)
    for (name, layout), message in messages.items():  # raised before the property could check anything
        print(f"  ERROR {name:<22} {layout:<9} {message}", file=out)
    if device.type == "cuda":
        for layout in profile.layouts if profile.graph_capture else ():
            with ended_on_fault(device, out):
                agrees = graph_agrees(module, materialize(batch, op, device, profile.strided_x), layout)
            print(f"  {'PASS' if agrees else 'FAIL'}  {'graph replay == eager':<22} {layout:<9}", file=out)
    else:
        print("  (graph replay vs eager: needs a CUDA device)", file=out)
    prop = PROPERTIES_BY_NAME[record["property"]]
    saved_fails = _fails(module, profile, batch, op, prop, record["layout"], record["params"], device)
    print(
        f"saved property '{record['property']}' in layout {record['layout']}: {'FAILS' if saved_fails else 'holds'}",
        file=out,
    )
    if saved_fails:
        small = minimise(module, profile, batch, op, prop, record["layout"], record["params"], device)
        print(f"minimised batch: {small}", file=out)
    return saved_fails


def main(argv=None):
    parser = argparse.ArgumentParser(prog="lora-verify replay", description=__doc__.splitlines()[0])
    parser.add_argument("case", help="a case file (JSON) written by a failing run or kept in tests/corpus/")
    parser.add_argument("--impl", default="impl", help="module under test (default: impl)")
    args = parser.parse_args(argv)
    record = load(args.case)
    return int(triage(record, importlib.import_module(args.impl), backend.device()))


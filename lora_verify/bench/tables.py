"""The run as text: the markdown file (header, goals, summary, routing, every row) and the terminal summary."""

import math
from pathlib import Path

from lora_verify.bench.results import groups

OURS = "ours sorted"
ROUTING_TARGET_US = {"decode": 10.0, "prefill": 20.0}  # issue 22: up to 1024 tokens / 8192-token prefill


def fmt_us(v) -> str:
    if v is None:
        return "-"
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def fmt_x(v) -> str:
    return "-" if v is None else (f"{v:.1f}" if v >= 10 else f"{v:.2f}")


def cell(row) -> str:
    if row is None:
        return "-"
    if row.time_us is not None:
        return fmt_us(row.time_us) + ("!" if row.status == "wrong" else "")
    return {"ok": "ok", "built": "ok", "skipped": "skip", "failed": "FAIL"}.get(row.status, row.status.upper())


def impl_columns(rows, short: dict) -> list:
    """The implementations with a row that ran (or, in a dry run, was built), in the rows' order."""
    seen = [r.impl for r in rows if r.op != "routing" and r.kind != "floor" and r.status != "skipped"]
    return [(i, short.get(i, i)) for i in dict.fromkeys(seen)]


def geomean(values) -> float:
    return math.exp(sum(map(math.log, values)) / len(values))


def goals(rows) -> list:
    """Issue 22's goals, per layer and operation: ours sorted against the fastest peer on each shape, and
    against cuBLAS on the one-adapter shapes; routing against its targets."""
    per: dict = {}
    for (layer, op, label), g in groups(rows).items():
        ours = g.get(OURS)
        if op == "routing" or ours is None or ours.time_us is None:
            continue
        entry = per.setdefault((layer, op), {"vs": [], "lost": [], "dense": [], "dense_lost": []})
        peers = {i: r.time_us for i, r in g.items() if r.kind == "peer" and r.time_us}
        if peers:
            best = min(peers, key=peers.get)
            ratio = peers[best] / ours.time_us
            entry["vs"].append((ratio, label))
            if ratio < 1:
                entry["lost"].append(f"{label} ({best} {fmt_us(peers[best])} vs {fmt_us(ours.time_us)})")
        dense = [r.time_us for r in g.values() if r.kind == "dense" and r.time_us]
        if dense:
            entry["dense"].append((dense[0] / ours.time_us, label))
            if dense[0] < ours.time_us:
                entry["dense_lost"].append(f"{label} ({fmt_us(dense[0])} vs {fmt_us(ours.time_us)})")
    if not per:
        return []
    lines = ["| layer | op | shapes | best peer / ours: geomean | worst (shape) | shapes a peer wins | "
             "one-adapter shapes: cuBLAS / ours, worst | shapes cuBLAS wins |", "|---|---|---|---|---|---|---|---|"]
    for (layer, op), e in per.items():
        if e["vs"]:
            worst = min(e["vs"])
            vs = f"{geomean([r for r, _ in e['vs']]):.2f} | {worst[0]:.2f} ({worst[1]})"
        else:
            vs = "- | -"
        lost = f"{len(e['lost'])}: " + ", ".join(e["lost"][:4]) + (" ..." if len(e["lost"]) > 4 else "")
        dense = f"{min(e['dense'])[0]:.2f} ({min(e['dense'])[1]})" if e["dense"] else "-"
        dense_lost = f"{len(e['dense_lost'])}: " + ", ".join(e["dense_lost"][:3]) if e["dense"] else "-"
        lines.append(f"| {layer} | {op} | {len(e['vs'])} | {vs} | {lost if e['lost'] else 0} | {dense} | "
                     f"{dense_lost if e['dense_lost'] else (0 if e['dense'] else '-')} |")
    routing = [r for r in rows if r.op == "routing" and r.impl == OURS and r.time_us is not None]
    for phase, target in ROUTING_TARGET_US.items():
        timed = [r for r in routing if r.phase == phase]
        if timed:
            worst = max(timed, key=lambda r: r.time_us)
            over = [r.label for r in timed if r.time_us > target]
            lines.append(f"\nours routing, {phase}: worst {fmt_us(worst.time_us)} us ({worst.label}); target "
                         f"{target:g} us; {len(over)} of {len(timed)} batches over it"
                         + (f": {', '.join(over)}" if over else ""))
    return lines


def pivot(rows, short: dict, markdown: bool) -> list:
    """One line per (layer, op, shape): roofline, launch floor, each implementation's time, two ratios, the error.

    The terminal form is terse (its last lines are what a remote run shows): layer and op head their blocks.
    """
    cols = impl_columns(rows, short)
    head = ["shape b/a/r", "MB", "roof", "floor", *(s for _, s in cols), "ours/roof", "ours/best peer", "err/bound"]
    table = []
    for (layer, op, label), g in groups(rows).items():
        if op == "routing":
            continue
        any_row, ours = next(iter(g.values())), g.get(OURS)
        floor = next((r for r in g.values() if r.kind == "floor"), None)
        errs = [r.err_bound for r in g.values() if r.err_bound is not None]
        table.append([f"{layer} {op}", label, f"{any_row.bytes / 1e6:.1f}" if any_row.bytes else "-",
                      fmt_us(any_row.roofline_us), fmt_us(floor.time_us if floor else None),
                      *(cell(g.get(i)) for i, _ in cols), fmt_x(ours.x_roofline if ours else None),
                      fmt_x(ours.x_best_peer if ours else None), f"{max(errs):.2f}" if errs else "-"])
    if markdown:
        lines = ["| layer op | " + " | ".join(head) + " |", "|" + "---|" * (len(head) + 1)]
        return lines + ["| " + " | ".join(c) + " |" for c in table]
    head.remove("MB")
    table = [[c[0], c[1], *c[3:]] for c in table]
    widths = [max(len(h), *(len(c[k + 1]) for c in table)) if table else len(h) for k, h in enumerate(head)]

    def line(cells):
        pairs = enumerate(zip(cells, widths, strict=True))
        return " ".join(c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in pairs)

    lines = ["times in us; roof = bytes / copy bandwidth; floor = empty kernel on our sorted grids; "
             "ours = ours sorted; ! = outside its error bound", line(head)]
    last = None
    for cells in table:
        if cells[0] != last:
            lines.append(f"-- {cells[0]}")
            last = cells[0]
        lines.append(line(cells[1:]))
    for impl in dict.fromkeys(r.impl for r in rows if r.op == "routing"):
        lines.append(f"-- routing, {impl} (us): "
                     + " ".join(f"{r.label}={cell(r)}" for r in rows if r.op == "routing" and r.impl == impl))
    return lines


FULL_COLUMNS = ("layer", "op", "impl", "phase", "batch", "tokens", "adapters", "rank", "time us", "timing", "GB/s",
                "roofline us", "x roofline", "x floor", "x best peer", "x cuBLAS", "err/bound", "rows checked", "grid",
                "status")


def full_table(rows) -> list:
    lines = ["| " + " | ".join(FULL_COLUMNS) + " |", "|" + "---|" * len(FULL_COLUMNS)]
    for r in rows:
        if r.status == "skipped":
            continue
        status = f"{r.status}: {r.note}" if r.note else r.status
        cells = [r.layer, r.op, r.impl, r.phase, str(r.batch), str(r.tokens), str(r.adapters), str(r.rank),
                 fmt_us(r.time_us), r.timing or "-", "-" if r.gbps is None else f"{r.gbps:.0f}", fmt_us(r.roofline_us),
                 fmt_x(r.x_roofline), fmt_x(r.x_floor), fmt_x(r.x_best_peer), fmt_x(r.x_cublas),
                 "-" if r.err_bound is None else f"{r.err_bound:.2f}", str(r.checked_rows or "-"),
                 "-" if r.grid is None else "+".join("x".join(map(str, g)) for g in r.grid), status.replace("|", "/")]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def summary_of(rows, status: str, limit=None) -> list:
    """Rows of one status, grouped by implementation and note (skipped), or one line each."""
    if status == "skipped":
        counts: dict = {}
        for r in rows:
            if r.status == status:
                counts[(r.impl, r.note)] = counts.get((r.impl, r.note), 0) + 1
        return [f"- {impl}: {n} rows: {note}" for (impl, note), n in counts.items()]
    lines = [f"- {r.layer} {r.op} / {r.impl} / {r.label}: {r.note}" for r in rows if r.status == status]
    return lines[:limit] + ([f"- ... {len(lines) - limit} more"] if limit and len(lines) > limit else [])


def write_markdown(path: Path, rows, meta: dict):
    lines = [
        f"# LoRA kernel benchmark: {meta['gpu']}",
        "",
        f"- date: {meta['date']}",
        f"- GPU: {meta['gpu']} ({meta['device_detail']})",
        f"- torch {meta['torch']}, Triton {meta['triton']}, CUDA {meta['cuda']}, Python {meta['python']}",
        f"- copy bandwidth: {fmt_gbps(meta['copy_gbps'])} ({meta['copy_note']})",
        f"- launch floor: {fmt_us(meta['floor_us'])} us (an empty @triton.jit kernel on a 1x1x1 grid; "
        "column `floor`: the same kernel on each grid our sorted path launches)",
        f"- timing: CUDA-graph replay (triton.testing.do_bench_cudagraph), median of 10 replays of {meta['rep_ms']} ms "
        "of calls; L2 not flushed; rows marked `eager` were timed the same way without the graph",
        f"- grid: {meta['grid']}; layers: {meta['layers']}; dtype bf16; scaling 0.5; sequence i on slot i % adapters",
        *[f"- {name}: {status}" for name, status in meta["implementations"].items()],
        f"- check: each implementation's first call against the float64 reference of the operation table, on "
        f"{meta['checked']}; `err/bound` = worst |error| / its derived bound (lora_verify.bounds, under the "
        "implementation's rounding model): above 1 is wrong",
        f"- command: `{meta['command']}` (from the repository root; {meta['elapsed_s']:.0f} s)",
        "",
        "Times in us. Shape `b/a/r`: batch (sequences; `pNxL` = N prefill sequences of L tokens) / adapters / rank. "
        "`MB`: bytes the operation must move; `roof`: MB over the copy bandwidth; `ours` = ours sorted (with routing's "
        "tile table); `ours/best peer` < 1: ours is faster than every peer on that shape.",
        "",
        "## Goals (issue 22)",
        "",
        *goals(rows),
        "",
        "## Summary",
        "",
        *pivot(rows, meta.get("short", {}), markdown=True),
        "",
        "## Routing, timed on its own",
        "",
        "Ours: `impl.sort_by_adapter` (per-sequence to sorted layout, its tile table included). A peer's: its "
        "adapter's `prepare` (our batch info of that layout into its engine's metadata), where it has one.",
        "",
        "| impl | batch b/a | tokens | time us | timing | status |",
        "|---|---|---|---|---|---|",
        *[f"| {r.impl} | {r.label} | {r.tokens} | {fmt_us(r.time_us)} | {r.timing or '-'} | {r.status} {r.note} |"
          for r in rows if r.op == "routing"],
        "",
        "## All rows",
        "",
        *full_table([r for r in rows if r.op != "routing"]),
        "",
    ]
    for status, title in (("wrong", "Outside the error bound"), ("failed", "Failed"), ("skipped", "Skipped")):
        listed = summary_of(rows, status)
        if listed:
            lines += [f"## {title}", "", *listed, ""]
    path.write_text("\n".join(lines))


def fmt_gbps(v) -> str:
    return "-" if v is None else f"{v:,.0f} GB/s"


def print_summary(rows, meta: dict, notes: list):
    print()
    for line in pivot(rows, meta.get("short", {}), markdown=False):
        print(line)
    for line in goals(rows):
        print(line.strip())
    counts: dict = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    print(f"GPU {meta['gpu']}; copy {fmt_gbps(meta['copy_gbps'])}; launch floor {fmt_us(meta['floor_us'])} us")
    for line in summary_of(rows, "skipped")[:6]:
        print("skipped " + line[2:][:160])
    for status in ("wrong", "failed"):
        for line in summary_of(rows, status, limit=6):
            print(f"{status.upper()} " + line[2:][:300])
    print(f"rows: {len(rows)} ({', '.join(f'{n} {s}' for s, n in counts.items())}); "
          f"{meta['elapsed_s']:.0f} s; " + "; ".join(notes))

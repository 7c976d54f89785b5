"""A release matrix: ``lora-verify matrix --sglang-release 0.4.8 0.5.23 ... [--impl MODULE[:LABEL] ...]``.

Each row is one implementation: a sglang release (``--sglang-release``: a version, fetched with
``pip download --no-deps`` into the cache, a directory or a .whl; loaded by ``lora_verify.adapters.sglang``)
or any module with SPEC.md's entry points (``--impl MODULE[:LABEL]``). Each row runs the property suite
(``lora-verify run``, the verification run) in its own process, so that releases never share a module;
its verdict table, log and failing cases go to ``OUT/<row>/``. The matrix, row x operation x property x
layout, is then printed and written as ``OUT/matrix.md``, ``OUT/matrix.json`` and, where matplotlib is
installed, ``OUT/matrix.png`` (a heat map). A row whose implementation cannot be loaded or run says so,
with the reason, instead of leaving a gap. ``--render OUT/matrix.json`` remakes the markdown and picture
from the JSON (e.g. one a GPU machine without matplotlib wrote); ``--resume`` keeps the rows ``OUT`` holds.
"""

import argparse
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from lora_verify.cases import IMPL_ENV, REPLAY
from lora_verify.ops import OPS
from lora_verify.report import format_ratio

SGLANG = "lora_verify.adapters.sglang"
NOT_OURS = "not test_routing_invariants and not test_buffers_follow_batches"  # impl's routing, whatever the row
GRACE_S = 60  # a row stopped at its --timeout may take this long to write what it found
SHORT = {"PASS": "pass", "FAIL": "FAIL", "ERROR": "ERROR", "INCOMPLETE": "incomplete", "NOT CLAIMED": "n/c",
         "NO EXAMPLES": "none", None: ""}


@dataclass
class Row:
    label: str
    impl: str  # module under test
    sglang: str = ""  # with impl == SGLANG: the release's sglang/ directory (LORA_SGLANG)
    source: str = ""  # where it came from
    status: str = ""  # "ran", or why it did not
    returncode: int = 0
    seconds: float = 0.0
    header: tuple = ()
    cells: dict = None  # "op|layout|property" -> the verdict row of lora_verify.report
    cases: tuple = ()  # failing cases saved by the run
    stopped: bool = False  # at its --timeout: the verdicts are of the tests that had ended
    tests: str = ""  # pytest's last line: "20 failed, 42 passed, 18 skipped, 7 errors" (errors leave cells empty)

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9.]+", "-", self.label).strip("-")

    def env(self) -> dict:
        return {"LORA_SGLANG": self.sglang} if self.sglang else {}

    def replay(self, case: str) -> str:
        prefix = "".join(f"{k}={shlex.quote(v)} " for k, v in self.env().items() if k in IMPL_ENV)
        return f"{prefix}{REPLAY} {case} --impl {self.impl}"


def version_key(label: str):
    """Sort key: releases by version (numbers compared as numbers), other rows after them by name."""
    parts = re.findall(r"\d+|[a-z]+", label.rsplit(" ", 1)[-1])
    return (not label.startswith("sglang "), [(0, int(p)) if p.isdigit() else (1, p) for p in parts], label)


def sglang_row(spec: str) -> Row:
    """A row for one sglang release (fetched now, if a version, so that the rows' runs only load)."""
    from lora_verify.adapters import sglang_release

    try:
        package_dir, source = sglang_release.locate(spec)
    except ImportError as exc:
        return Row(label=f"sglang {spec}", impl=SGLANG, source=spec, status=f"cannot load: {exc}")
    version = sglang_release.read_version(package_dir)
    return Row(label=f"sglang {version or spec}", impl=SGLANG, sglang=str(package_dir), source=source)


def impl_row(spec: str) -> Row:
    module, _, label = spec.partition(":")
    return Row(label=label or module, impl=module, source=module)


def run_row(row: Row, out: Path, args) -> Row:
    """Runs the verification run for ``row`` in a child process; fills in its verdicts."""
    if row.status:  # could not even be located
        return row
    folder = out / row.slug
    folder.mkdir(parents=True, exist_ok=True)
    verdicts, cases = folder / "verdicts.json", folder / "failures"
    verdicts.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "lora_verify", "run", "--impl", row.impl, "--profile", args.profile,
           "-n", str(args.workers), "--verdicts-json", str(verdicts), "--case-dir", str(cases), "--",
           *selecting(args.pytest_args)]
    start = time.monotonic()
    with open(folder / "log.txt", "w") as log:
        log.write(f"$ {' '.join(f'{k}={v}' for k, v in row.env().items())} {shlex.join(cmd)}\n")
        log.flush()
        child = subprocess.Popen(cmd, env={**os.environ, **row.env()}, stdout=log, stderr=subprocess.STDOUT,
                                 process_group=0)  # its xdist workers with it, so that a signal reaches them all
        try:
            row.returncode = child.wait(timeout=args.timeout or None)
        except subprocess.TimeoutExpired:  # SIGINT: the workers hand in their verdicts, pytest writes them
            row.stopped = True
            os.killpg(child.pid, signal.SIGINT)
            try:
                row.returncode = child.wait(timeout=GRACE_S)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                row.returncode = child.wait()
    row.seconds = round(time.monotonic() - start, 1)
    text = (folder / "log.txt").read_text(errors="replace")
    if verdicts.is_file():
        data = json.loads(verdicts.read_text())
        row.header = tuple(data.get("header", ()))
        row.cells = {f"{r['operation']}|{r['layout']}|{r['property']}": r for r in data["rows"] if relevant(r)}
    row.cases = tuple(sorted(str(p) for p in cases.glob("*.json")))
    row.tests = tests_line(text)
    row.status = "ran" if row.cells else f"cannot run: {why_not(text, row)}"
    (folder / "row.json").write_text(json.dumps(asdict(row), indent=1) + "\n")
    return row


def row_of(data: dict) -> Row:
    return Row(**{**data, "header": tuple(data["header"]), "cases": tuple(data["cases"])})


def selecting(pytest_args) -> list:
    """``pytest_args`` with the suite's checks of our own routing left out (they do not depend on the row): a
    ``-k`` given is combined with that."""
    args, given = list(pytest_args), None
    if "-k" in args:
        i = args.index("-k")
        given = args.pop(i + 1)
        args.pop(i)
    return [*args, "-k", f"({given}) and {NOT_OURS}" if given else NOT_OURS]


def relevant(verdict_row) -> bool:
    """A verdict about the implementation under test (not the suite's own routing or graph buffers)."""
    return any(verdict_row["operation"].startswith(op.name) for op in OPS)


def tests_line(log: str) -> str:
    """pytest's count of outcomes, from the run's log ("" when it printed none)."""
    found = re.findall(r"^=* ?((?:\d+ (?:passed|failed|skipped|errors?|xfailed|xpassed|warnings?)(?:, )?)+) in [\d.]+s",
                       log, re.M)
    return found[-1].strip().rstrip(",") if found else ""


def why_not(log: str, row: Row) -> str:
    """The reason a run recorded no verdict, from its log: the skip reason, else the last error line."""
    found = re.search(r"cannot be imported: (.*)", log)
    if found:
        return found.group(1).strip()
    if row.stopped:
        return f"stopped at its time limit ({row.seconds:.0f} s) before any verdict"
    errors = [line for line in log.splitlines() if re.match(r"^(E |\w*Error|INTERNALERROR)", line)]
    return (errors[-1] if errors else log.strip().splitlines()[-1] if log.strip() else "no output")[:400]


def columns(rows) -> list:
    """Every (operation, layout, property) seen, operations in the table's order."""
    order = {op.name: i for i, op in enumerate(OPS)}
    keys = {k for row in rows for k in (row.cells or {})}

    def key(k):
        op, layout, prop = k.split("|")
        base = next((o.name for o in OPS if op.startswith(o.name)), op)
        return (order.get(base, len(order)), op, prop, layout)

    return sorted(keys, key=key)


def cell_text(cell) -> str:
    """A verdict as a table cell: failures out of examples when it failed (shrinking adds examples), the worst
    err/bound of a passing closeness check."""
    if not cell:
        return ""
    text = SHORT[cell["verdict"]]
    if cell["verdict"] == "FAIL":
        text += f" {cell['failures']}/{cell['examples']}"
    if cell["verdict"] == "PASS" and cell["property"] == "close to reference" and cell["worst"] is not None:
        text += f" ({format_ratio(cell['worst'])})"
    return text


def summary(row, op_name) -> str:
    """One operation of one row: the failing properties, else whether all passed or were not claimed."""
    if row.status != "ran":
        return "—"
    cells = {k: c for k, c in row.cells.items() if k.split("|")[0] == op_name}
    named = {v: sorted(f"{k.split('|')[2]} ({k.split('|')[1]})" for k, c in cells.items() if c["verdict"] == v)
             for v in ("FAIL", "ERROR", "INCOMPLETE")}
    if any(named.values()):
        return "; ".join(f"{v}: " + ", ".join(names) for v, names in named.items() if names)
    passed = sum(c["verdict"] == "PASS" for c in cells.values())
    unclaimed = sum(c["verdict"] == "NOT CLAIMED" for c in cells.values())
    return f"pass {passed}" + (f", n/c {unclaimed}" if unclaimed else "") if cells else ""


def outcome(row) -> str:
    """The row's outcome column: ran (with pytest's counts; stopped at its limit, if so), or why it did not."""
    if row.status != "ran":
        return row.status
    tests = f": {row.tests}" if row.tests else ""
    return f"ran, stopped at its time limit ({row.seconds:.0f} s){tests} (the tests that ended)" if row.stopped \
        else f"ran{tests}"


def markdown(meta, rows) -> str:
    cols = columns(rows)
    ops = [op.name for op in OPS]
    lines = [f"# {meta['title']}", "", f"Made by `{meta['command']}` ({meta['when']}; {meta['machine']}).", "",
             "Cells: `pass`; `FAIL f/n` (f of n examples failed); `ERROR` (a test failed outside its checks: the "
             "error is in the row's log); `incomplete` (the row was stopped inside a test of this property: "
             "its examples passed); `n/c` (not claimed: the reason is in the row's "
             "claims below); `none` (no example ran); `—` (the row did not run). `(0.97)`: the worst |error| / bound "
             "of a passing closeness check.", "",
             "## Release × operation", "", "| row | outcome | " + " | ".join(ops) + " |",
             "|---|---|" + "---|" * len(ops)]
    lines += [f"| {r.label} | {outcome(r)} | " + " | ".join(summary(r, op) for op in ops) + " |" for r in rows]
    for op in {c.split("|")[0]: None for c in cols}:
        mine = [c for c in cols if c.split("|")[0] == op]
        lines += ["", f"## {op}", "", "| row | " + " | ".join(f"{c.split('|')[2]} ({c.split('|')[1]})"
                                                              for c in mine) + " |", "|---|" + "---|" * len(mine)]
        lines += [f"| {r.label} | " + " | ".join(cell_text((r.cells or {}).get(c)) for c in mine) + " |" for r in rows]
    lines += ["", "## Rows: source, claims, outcome", ""]
    for r in rows:
        lines += [f"### {r.label}", "", f"- source: `{r.source}`; status: {r.status}; exit {r.returncode}; "
                  f"{r.seconds:.0f} s; log `{r.slug}/log.txt`"]
        lines += [f"- {line}" for line in r.header]
        lines += [f"- failing case: `{c}`; replay: `{r.replay(c)}`" for c in r.cases]
        lines.append("")
    return "\n".join(lines)


def heat_map(meta, rows, path: Path) -> str:
    """The matrix as a PNG (rows x columns, one colour per verdict); returns what was done."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap
        from matplotlib.patches import Patch
    except ImportError:
        return f"no picture: matplotlib is not installed here (pip install matplotlib; then --render {path.parent}"\
               "/matrix.json)"
    cols = columns(rows)
    colours = ["#ffffff", "#4caf50", "#e53935", "#ff9800", "#90caf9", "#bdbdbd", "#fff59d", "#424242"]  # ..., no run
    index = {None: 0, "PASS": 1, "FAIL": 2, "ERROR": 3, "INCOMPLETE": 4, "NOT CLAIMED": 5, "NO EXAMPLES": 6}
    grid = [[7 if r.status != "ran" else index[((r.cells or {}).get(c) or {}).get("verdict")] for c in cols]
            for r in rows]
    fig, ax = plt.subplots(figsize=(max(8, 0.16 * len(cols) + 3), 0.3 * len(rows) + 3.2))
    ax.imshow(grid, cmap=ListedColormap(colours), vmin=0, vmax=len(colours) - 1, aspect="auto",
              interpolation="nearest")
    ax.set_yticks(range(len(rows)), [r.label for r in rows], fontsize=7)
    names = [f"{op.replace('_fwd', '')} {prop} ({layout[0]})" for op, layout, prop in (c.split("|") for c in cols)]
    ax.set_xticks(range(len(cols)), names, rotation=90, fontsize=5)
    ax.set_xticks([i - 0.5 for i in range(len(cols) + 1)], minor=True)
    ax.set_yticks([i - 0.5 for i in range(len(rows) + 1)], minor=True)
    ax.grid(which="minor", color="white", linewidth=0.5)
    ax.tick_params(which="minor", length=0)
    labels = ["pass", "FAIL", "ERROR (outside the checks)", "incomplete (stopped)", "not claimed", "no examples",
              "cannot run"]
    ax.legend(handles=[Patch(color=c, label=t) for c, t in zip(colours[1:], labels, strict=True)], fontsize=6,
              loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(f"{meta['title']}\n{meta['machine']}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return f"picture: {path}"


def write(meta, rows, out: Path) -> list:
    rows = sorted(rows, key=lambda r: version_key(r.label))
    (out / "matrix.json").write_text(json.dumps({"meta": meta, "rows": [asdict(r) for r in rows]}, indent=1) + "\n")
    (out / "matrix.md").write_text(markdown(meta, rows) + "\n")
    return [f"table: {out / 'matrix.md'}, {out / 'matrix.json'}", heat_map(meta, rows, out / "matrix.png")]


def machine() -> str:
    import torch
    import triton

    from lora_verify import backend

    where = backend.device_name(backend.device()) if backend.has_cuda() else "CPU, Triton interpreter"
    return f"{where}; torch {torch.__version__}, triton {triton.__version__}, python {platform.python_version()}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="lora-verify matrix", description=__doc__.split("\n")[0])
    parser.add_argument("--sglang-release", nargs="+", action="extend", default=[], metavar="REL",
                        help="sglang releases: versions (fetched with pip download --no-deps), directories or wheels")
    parser.add_argument("--impl", nargs="+", action="extend", default=[], metavar="MODULE[:LABEL]",
                        help="other implementations: modules with SPEC.md's entry points")
    parser.add_argument("--out", default="matrix", help="where the matrix and each row's log and cases go")
    parser.add_argument("--profile", default="ci", help="hypothesis profile of every row (default: ci)")
    parser.add_argument("-n", "--workers", default=0, type=int, help="pytest-xdist workers per row")
    parser.add_argument("-j", "--jobs", default=1, type=int, help="rows run at once (default 1)")
    parser.add_argument("--timeout", default=0, type=float, help="seconds a row may take (default: no limit)")
    parser.add_argument("--title", default="Property verdicts per implementation")
    parser.add_argument("--resume", action="store_true", help="keep the rows OUT already holds (OUT/<row>/row.json)")
    parser.add_argument("--render", metavar="MATRIX_JSON", help="only remake matrix.md/png from this JSON")
    parser.add_argument("pytest_args", nargs="*", help="passed to every row's pytest (after --)")
    args = parser.parse_args(argv)
    if args.render:
        data = json.loads(Path(args.render).read_text())
        rows = [row_of(r) for r in data["rows"]]
        for line in write(data["meta"], rows, Path(args.render).parent):
            print(line)
        return 0
    rows = [sglang_row(s) for s in args.sglang_release] + [impl_row(s) for s in args.impl]
    if not rows:
        parser.error("no rows: give --sglang-release and/or --impl")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"title": args.title, "machine": machine(), "when": time.strftime("%Y-%m-%d %H:%M %Z"),
            "command": "lora-verify matrix " + shlex.join(argv if argv is not None else sys.argv[1:]),
            "profile": args.profile}

    def one(row):
        done = out / row.slug / "row.json"
        if args.resume and done.is_file():
            row = row_of(json.loads(done.read_text()))
            print(f"{row.label}: kept from {done}", flush=True)
            return row
        row = run_row(row, out, args)
        print(f"{row.label}: {outcome(row)} ({row.seconds:.0f} s, {len(row.cases)} failing cases)", flush=True)
        return row

    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        rows = list(pool.map(one, rows))
    rows.sort(key=lambda r: version_key(r.label))
    ops = [op.name for op in OPS]
    width = max(len(r.label) for r in rows)
    print(f"\n{'row':<{width}}  " + "  ".join(f"{op:<22}" for op in ops))
    for r in rows:
        print(f"{r.label:<{width}}  " + "  ".join(f"{summary(r, op)[:22]:<22}" for op in ops))
    for line in write(meta, rows, out):
        print(line)
    failed = (r.status != "ran" or r.stopped or any(c["verdict"] in ("FAIL", "ERROR") for c in r.cells.values())
              for r in rows)
    return int(any(failed))

"""The implementations the benchmark times side by side, each a :class:`Contender`.

- ``ours sorted`` / ``ours unsorted``: ``impl``'s entry points on the sorted layout (``impl.sort_by_adapter``,
  its tile table included, built before the timed region and timed on its own as ``routing``) and on the
  per-sequence one;
- the peers: every module of :data:`ADAPTERS` (SPEC.md's four entry points and a ``PROFILE``), on the
  layouts listed there and claimed by its profile; a module that cannot be imported has its rows skipped
  with the ImportError's reason. More with ``--peer LABEL=MODULE`` (any module of SPEC.md's calling
  convention, on both layouts);
- ``torch gather+bmm``: ``weights[slot of each token]`` gathered, then ``torch.bmm`` per slice (a peer too);
- ``cuBLAS dense`` (one-adapter shapes): the same product with slot 0's weights and no adapters at all,
  ``torch.mm`` / ``Tensor.addmm_`` per slice (on CPU, in a dry run, torch's CPU GEMM);
- ``empty kernel``: an empty ``@triton.jit`` kernel launched on each grid our sorted path launches (the
  launch floor of those grids).

An adapter translates our batch info into its engine's metadata. One that exposes ``prepare(batch_info,
num_rows)`` (its entry points then take what it returns as their batch info) has that done once per batch
outside the timed region, and timed on its own as a ``routing`` row, as ours is (``impl.sort_by_adapter``);
otherwise the translation runs, and is timed, in every call (said on its rows).
"""

import importlib
from dataclasses import dataclass
from typing import Callable, Optional

import torch

import impl
from lora_verify import profiles
from lora_verify.bench.timing import empty_launches, launch_grids

# (row label, short column name, module, layouts timed: those each engine hands its kernels, sorted first)
ADAPTERS = (
    ("sglang", "sgl", "lora_verify.adapters.sglang", ("sorted", "unsorted")),
    ("sglang csgmv", "csgmv", "lora_verify.adapters.sglang_csgmv", ("sorted",)),
    ("sglang triton_v2", "tv2", "lora_verify.adapters.sglang_triton_v2", ("sorted",)),
    ("vllm", "vllm", "lora_verify.adapters.vllm", ("sorted",)),
)
LAYOUTS = ("sorted", "unsorted")


class Skip(Exception):
    """Raised by a contender that does not run on a case: the row is skipped with this reason."""


@dataclass
class Contender:
    name: str  # the row's impl
    short: str  # its column in the terminal table
    kind: str  # results.KINDS
    make: Callable  # (case, base) -> zero-argument call (an expand updates ``base`` in place); may raise Skip
    rounding: str = "once"  # its expands' rounding model (lora_verify.bounds); the check's bound follows it
    compiles: bool = True  # launches Triton kernels (a compile warm-up calls it once)
    checked: bool = True  # its output is compared with the reference
    skip: str = ""  # why every row of it is skipped
    note: str = ""  # said on every row of it
    about: str = ""  # what it is, for the results' header
    applies: Callable = lambda shape: True  # no row at all on a shape it does not apply to
    route: Optional[Callable] = None  # (per-sequence info, sorted info, tokens) -> zero-argument call: its routing


def first_line(exc) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {(text[0] if text else '')[:300]}"


def _module_contenders(label: str, short: str, module_name: str, layouts, kind: str = "peer") -> list:
    """One contender per layout of a module with SPEC.md's entry points (skipped ones when it cannot be loaded)."""
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or whatever a loader of another project's files raises
        reason = f"{module_name} not importable: {first_line(exc)}"
        return [Contender(f"{label} {lay}", _short(short, lay), kind, None, skip=reason) for lay in layouts]
    profile = profiles.of(module)
    prepare = getattr(module, "prepare", None)
    if not callable(prepare):
        prepare = None
    note = "its batch translation runs in every call (no prepare)" if prepare is None and kind == "peer" else ""
    out = []
    for layout in layouts:
        unclaimed = profile.unclaimed([layout])

        def make(case, base, m=module, lay=layout):
            info = getattr(case, lay)
            return case.call(m, info if prepare is None else prepare(info, case.shape.tokens), base)

        def route(unsorted, sorted_, tokens, lay=layout):
            info = unsorted if lay == "unsorted" else sorted_
            return lambda: prepare(info, tokens)

        out.append(
            Contender(
                f"{label} {layout}",
                _short(short, layout),
                kind,
                make,
                rounding=profile.rounding,
                skip=f"not claimed: {unclaimed}" if unclaimed else "",
                note=note,
                about=f"{module_name} ({profile.summary()[0]}; rounding {profile.rounding}; {layout} layout)",
                route=None if prepare is None else route,
            )
        )
    return out


def _short(short: str, layout: str) -> str:
    return short if layout == "sorted" else f"{short}-u"


def _kernel_module(op) -> str:
    return op.kernel.removesuffix(".py").replace("/", ".")


def _floor(case, base):
    grids = launch_grids(_kernel_module(case.op), case.call(impl, case.sorted, base))
    call = empty_launches(grids, case.x)
    call.grids = grids
    return call


def _gather_bmm(max_gather_gib: float):
    def make(case, base):
        x, w, idx, R, op = case.x, case.w, case.token_slots, case.shape.rank, case.op
        gib = case.shape.tokens * w[0].numel() * w.element_size() / 2**30
        if gib > max_gather_gib:
            raise Skip(f"the gather needs {gib:.1f} GiB > --max-gather-gib {max_gather_gib:g}")
        if not op.in_place:
            return lambda: torch.bmm(x.unsqueeze(1), w[idx].transpose(1, 2)).squeeze(1)
        bounds = op.slice_offsets(case.dims)
        scal = case.unsorted.scalings[idx].to(x.dtype)

        def expand():
            gathered = w[idx]
            xs = (x * scal[:, None]).unsqueeze(1)
            for j in range(len(bounds) - 1):
                lo, hi = bounds[j], bounds[j + 1]
                part = torch.bmm(xs[:, :, j * R : (j + 1) * R], gathered[:, lo:hi, :].transpose(1, 2))
                base[:, lo:hi].add_(part.squeeze(1))
            return base

        return expand

    return make


def _dense(case, base):
    """Slot 0's weights on every row, by the vendor's GEMM: the product with no adapters, routing or gather."""
    x, w, R, op = case.x, case.w[0], case.shape.rank, case.op
    if not op.in_place:
        out = torch.empty(x.shape[0], w.shape[0], device=x.device, dtype=x.dtype)
        return lambda: torch.mm(x, w.T, out=out)
    bounds, scaling = op.slice_offsets(case.dims), float(case.unsorted.scalings[0])

    def expand():
        for j in range(len(bounds) - 1):
            lo, hi = bounds[j], bounds[j + 1]
            base[:, lo:hi].addmm_(x[:, j * R : (j + 1) * R], w[lo:hi].T, alpha=scaling)
        return base

    return expand


def contenders(max_gather_gib: float = 8.0, peers: Optional[list] = None, extra: tuple = ()) -> list:
    """Every implementation timed, in the order of the tables: the floor, ours, the peers, the baselines.

    ``peers``: names of :data:`ADAPTERS` to include (None: all); ``extra``: ``(label, module)`` pairs, timed
    on both layouts (a layout its profile does not claim: skipped rows).
    """
    impl.debug(False)  # LORA_VALIDATE=1 would add host syncs, which a CUDA-graph capture cannot take
    out = [
        Contender("empty kernel", "floor", "floor", _floor, checked=False,
                  about="an empty @triton.jit kernel on each grid our sorted path launches"),
        *_module_contenders("ours", "ours", "impl", LAYOUTS, kind="ours"),
    ]
    out[1].route = lambda unsorted, sorted_, tokens: lambda: impl.sort_by_adapter(unsorted, tokens)
    known = {label for label, *_ in ADAPTERS}
    unknown = set(peers or ()) - known
    if unknown:
        raise ValueError(f"unknown peers {sorted(unknown)}; expected some of {', '.join(sorted(known))}")
    for label, short, module, layouts in ADAPTERS:
        if peers is None or label in peers:
            out += _module_contenders(label, short, module, layouts)
    for label, module in extra:
        out += _module_contenders(label, label, module, LAYOUTS)
    out.append(Contender("torch gather+bmm", "torch", "peer", _gather_bmm(max_gather_gib), rounding="lora_first",
                         compiles=False, about=f"torch {torch.__version__}: weights[slot of each token], torch.bmm"))
    out.append(Contender("cuBLAS dense", "cublas", "dense", _dense, rounding="lora_first", compiles=False,
                         applies=lambda shape: shape.adapters == 1,
                         about="torch.mm / Tensor.addmm_ with slot 0's weights, one-adapter shapes only"))
    return out


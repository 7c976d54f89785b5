"""A bounds- and race-checking mode for Triton's interpreter (memcheck and racecheck, on CPU).

A kernel may read past a tensor and still return the right numbers (the
stray value lands in a masked row, or meets a masked zero), or write past
it and corrupt the heap. In this mode every active lane of every load and
store must address an element of one tensor argument of the launch: the
view itself, not its storage, so that a guard band or a padding column
around a view counts as out of bounds. Pointers carry their provenance (the
argument they were derived from), so a lane that strays from ``x`` into a
neighbouring allocation still counts as out of ``x``. Each store is also recorded per
program; two programs of one launch storing to one element is a race, which
sequential interpretation would hide. So is a program loading an element
another program stored, unless an atomic orders the two: the storer released
(``sem`` release or acq_rel) at an address the loader later acquired (acquire
or acq_rel), directly or through other programs' atomics at GPU scope, as
the PTX memory model's release and acquire patterns do (a counter of the
programs done). Atomics are bounds-checked too.
Violations raise :class:`MemoryViolation` naming the kernel, the argument,
the program id and the offending element offsets. A kernel that reads its
operands' addresses from a pointer table (vLLM's per-slice weights) reaches
tensors that are no argument: :func:`reachable` names them.
"""

from contextlib import contextmanager

import numpy as np

from lora_verify.tight import span

_state = {"on": True, "launch": None, "reachable": ()}
_ORIGIN = "lora_origin"  # TensorHandle attr: data_ptr of the argument a pointer came from


FAR = 1 << 30  # bytes past every argument's allocation: no GPU allocator keeps memory mapped there for a test


class MemoryViolation(AssertionError):
    pass


class IllegalAddress(MemoryViolation):
    """An access more than ``FAR`` bytes away from every allocation the launch was given: on a GPU an illegal
    address, which kills the process's CUDA context. ``lora_verify.faults`` treats it as that crash (saved,
    counted, the worker replaced) rather than as an ordinary failure to shrink; a stray access nearer (into
    margins, guard bands, a neighbour) stays a MemoryViolation: on a GPU it reads or writes silently."""

    kills_device = True


class _View:
    """The elements of one tensor argument, as byte addresses."""

    def __init__(self, name, tensor):
        self.name, self.itemsize = name, tensor.element_size()
        self.start = tensor.data_ptr()
        self.shape, self.strides = tuple(tensor.shape), tuple(tensor.stride())
        self.numel = tensor.numel()
        self.end = self.start + (span(tensor) if self.numel else 0) * self.itemsize
        storage = tensor.untyped_storage()
        self.allocation = (storage.data_ptr(), storage.data_ptr() + storage.nbytes())

    def distance(self, addrs: np.ndarray) -> np.ndarray:
        """Bytes from each address to this argument's allocation (0 inside it)."""
        a = addrs.astype(np.int64)
        return np.maximum(np.maximum(self.allocation[0] - a, a - self.allocation[1] + 1), 0)

    def holds(self, addrs: np.ndarray) -> np.ndarray:
        """Which byte addresses are (the first byte of) an element of the view."""
        off = addrs.astype(np.int64) - self.start
        ok = (off >= 0) & (off < self.end - self.start) & (off % self.itemsize == 0)
        rest = np.where(ok, off // self.itemsize, 0)
        for n, s in sorted(zip(self.shape, self.strides, strict=True), key=lambda p: -p[1]):
            if s == 0:
                continue
            index = rest // s
            ok &= index < n
            rest = rest - index * s
        return ok & (rest == 0)

    def element_offsets(self, addrs):
        return ((addrs.astype(np.int64) - self.start) // self.itemsize).tolist()


class _Launch:
    def __init__(self, kernel, args):
        self.kernel = kernel
        tensors = [*args.items(), *(("reachable", t) for t in _state["reachable"])]
        self.views = [_View(name, t) for name, t in tensors if hasattr(t, "data_ptr") and t.numel() > 0]
        self.writer = {}  # element address -> program id that stored it
        self.stored = set()  # start addresses of the views stored to (loads elsewhere cannot race)
        self.seen = {}  # program id -> programs whose stores it has acquired (through atomics)
        self.released = {}  # atomic's address -> programs whose stores a release there published

    def check(self, kind, ptrs, mask, program, sem=""):
        """Bounds, then per ``kind``: a load's ordering, a store's race, an atomic's ``sem`` (``atomic``)."""
        addrs = np.asarray(ptrs.data, dtype=np.uint64)[np.asarray(mask, dtype=bool)].ravel()
        if addrs.size == 0:
            return
        origin = ptrs.attr.get(_ORIGIN)
        views = [v for v in self.views if v.start == origin] or self.views
        inside = np.zeros(addrs.shape, dtype=bool)
        for view in views:
            inside |= view.holds(addrs)
        if not inside.all():
            bad = addrs[~inside]
            view = min(views, key=lambda v: min(abs(int(bad[0]) - v.start), abs(int(bad[0]) - v.end)))
            far = np.min([v.distance(bad) for v in self.views], axis=0) > FAR
            raise (IllegalAddress if far.any() else MemoryViolation)(
                f"{self.kernel}: {kind} by program {program} out of bounds of argument '{view.name}' "
                f"{list(view.shape)} (strides {list(view.strides)}): {bad.size} lane(s), "
                f"element offsets {view.element_offsets(bad[:8])}"
            )
        if kind == "atomic":
            self.atomic(addrs, sem, program)
            return
        if kind == "load":
            self.check_ordered(addrs, views, program)
        if kind == "store":
            self.stored.update(v.start for v in views if v.holds(addrs).any())
            for addr in addrs.tolist():
                first = self.writer.setdefault(addr, program)
                if first != program:
                    raise MemoryViolation(
                        f"{self.kernel}: race: programs {first} and {program} both store {self.element(addr)}"
                    )

    def element(self, addr) -> str:
        """``'name' element offset N``: the argument holding ``addr`` and the element's offset in it."""
        view = next(v for v in self.views if v.holds(np.array([addr], dtype=np.uint64))[0])
        return f"'{view.name}' element offset {view.element_offsets(np.array([addr]))[0]}"

    def check_ordered(self, addrs, views, program):
        """A load of elements another program stored must come after an acquire of that program's release."""
        if not any(v.start in self.stored for v in views):
            return
        seen = self.seen.get(program, ())
        for addr in addrs.tolist():
            first = self.writer.get(addr, program)
            if first != program and first not in seen:
                raise MemoryViolation(
                    f"{self.kernel}: race: program {program} loads {self.element(addr)} that program {first} "
                    f"stored, with no atomic ordering the two (released by the storer, acquired by the loader)"
                )

    def atomic(self, addrs, sem: str, program):
        """An atomic at ``addrs`` by ``program``: an acquire takes in what releases there published, a release
        publishes the stores ``program`` made or acquired."""
        for addr in addrs.tolist():
            if "ACQUIRE" in sem:
                self.seen.setdefault(program, set()).update(self.released.get(addr, ()))
            if "RELEASE" in sem:
                self.released.setdefault(addr, set()).update({program, *self.seen.get(program, ())})


def install():
    """Turns the mode on for every later launch (idempotent)."""
    import inspect

    from triton.runtime import interpreter as interp

    if getattr(interp.GridExecutor, "_bounds_checked", False):
        return
    builder = interp.InterpreterBuilder
    call, load, store = interp.GridExecutor.__call__, builder.create_masked_load, builder.create_masked_store
    rmw = builder.create_atomic_rmw

    def checked_call(self, *args, **kwargs):
        sig = inspect.signature(self.fn)  # launch options (num_warps, ...) are no kernel arguments
        bound = sig.bind_partial(*args, **{k: v for k, v in kwargs.items() if k in sig.parameters}).arguments
        launch = _Launch(self.fn.__name__, bound) if _state["on"] else None
        outer, _state["launch"] = _state["launch"], launch
        try:
            return call(self, *args, **kwargs)
        finally:
            _state["launch"] = outer

    def checked_load(self, ptrs, mask, *rest, **kw):
        if _state["launch"] is not None:
            _state["launch"].check("load", ptrs, mask.data, tuple(self.grid_idx))
        return load(self, ptrs, mask, *rest, **kw)

    def checked_store(self, ptrs, value, mask, *rest, **kw):
        if _state["launch"] is not None:
            _state["launch"].check("store", ptrs, mask.data, tuple(self.grid_idx))
        return store(self, ptrs, value, mask, *rest, **kw)

    def checked_rmw(self, op, ptrs, value, mask, sem, scope):
        if _state["launch"] is not None:  # GPU scope or wider orders programs (the CTA scope orders none)
            _state["launch"].check("atomic", ptrs, mask.data, tuple(self.grid_idx),
                                   str(sem) if "CTA" not in str(scope) else "")
        return rmw(self, op, ptrs, value, mask, sem, scope)

    implicit_cvt = interp._implicit_cvt

    def tagged_cvt(arg):
        out = implicit_cvt(arg)
        if hasattr(arg, "data_ptr"):
            out.handle.attr[_ORIGIN] = arg.data_ptr()
        return out

    def keeps_origin(method, operand):
        def wrapped(self, *args, **kw):
            out = method(self, *args, **kw)
            origin = getattr(args[operand], "attr", {}).get(_ORIGIN)
            if origin is not None:
                out.attr[_ORIGIN] = origin
            return out

        return wrapped

    # the ops that derive a pointer from a pointer, and which operand is the pointer
    for name, operand in [("create_addptr", 0), ("create_splat", 1), ("create_broadcast", 0),
                          ("create_expand_dims", 0), ("create_reshape", 0), ("create_trans", 0),
                          ("create_select", 1)]:
        setattr(builder, name, keeps_origin(getattr(builder, name), operand))
    interp._implicit_cvt = tagged_cvt

    interp.GridExecutor.__call__ = checked_call
    builder.create_masked_load = checked_load
    builder.create_masked_store = checked_store
    builder.create_atomic_rmw = checked_rmw
    interp.GridExecutor._bounds_checked = True


@contextmanager
def reachable(*tensors):
    """Launches inside may also address ``tensors`` (besides their arguments), for the duration."""
    outer, _state["reachable"] = _state["reachable"], (*_state["reachable"], *tensors)
    try:
        yield
    finally:
        _state["reachable"] = outer


@contextmanager
def unchecked():
    """Runs launches without checks (to show what the mode catches)."""
    _state["on"] = False
    try:
        yield
    finally:
        _state["on"] = True

"""Stand-in packages: a peer's kernel files imported without its engine (sglang, vLLM).

A kernel file is imported as a submodule of empty stand-in packages whose ``__path__`` is the real
directory, so that no package ``__init__`` runs (the engine: registries, fused ops, heavy dependencies),
and the few engine modules it imports are given as stand-in modules holding just the names it uses.
Afterwards every entry of ``sys.modules`` under the stand-ins' top-level names is put back as it was, so
that several loads (other releases, other settings) coexist in one process and a real import is
unaffected. ``@triton.jit`` picks interpreter or compiler when a kernel file is imported: load after the
backend is chosen.
"""

import contextlib
import importlib
import importlib.machinery
import importlib.util
import os
import sys
import types
from pathlib import Path
from typing import Optional


def package(name: str, path: Optional[Path] = None) -> types.ModuleType:
    """An empty package; with ``path``, its submodules are found in that directory."""
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
    module.__path__ = [str(path)] if path else []
    module.__spec__.submodule_search_locations = module.__path__
    return module


def module(name: str, **names) -> types.ModuleType:
    """A stand-in module holding ``names``."""
    stand_in = types.ModuleType(name)
    stand_in.__dict__.update(names)
    return stand_in


def packages(top: str, root: Path, *dotted: str) -> dict:
    """Stand-in packages for ``top`` and each of ``dotted`` (names below it), each on its real directory."""
    out = {top: package(top, root)}
    for name in dotted:
        out[name] = package(name, root.joinpath(*name.split(".")[1:]))
    return out


def locate(env: str, top: str, files, resolve=None) -> Path:
    """The ``top/`` package directory holding every one of ``files`` (paths relative to it).

    ``env`` (an environment variable) may name that directory or one holding it (a site-packages, an
    unpacked wheel); unset, the installed package is used (found without importing it). ``resolve`` turns
    a value that is no directory (a version, a wheel) into one.
    """
    given = os.environ.get(env)
    if given and resolve is not None and not Path(given).is_dir():
        roots = [resolve(given)]
    elif given:
        roots = [Path(given) / top, Path(given)]
    else:
        spec = importlib.util.find_spec(top)
        roots = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    for root in roots:
        if root.name == top and all((root / f).is_file() for f in files):
            return root
    wanted = f"{top}/{{{', '.join(files)}}}"
    where = f"{env}={given} holds no {wanted}" if given else \
        f"the installed {top} ({roots[0]}) lacks {wanted}" if roots else f"{env} is unset and {top} is not installed"
    raise ImportError(
        f"{where}: set {env} to a directory holding {wanted} (e.g. pip install --no-deps --target DIR "
        f"{top}==VERSION), or install {top}"
    )


@contextlib.contextmanager
def installed(stand_ins: dict):
    """``stand_ins`` (name -> module) in ``sys.modules`` for the duration; then every entry under their
    top-level names is put back as it was."""
    tops = {name.split(".")[0] for name in stand_ins}

    def under(name):
        return name.split(".")[0] in tops

    saved = {name: mod for name, mod in sys.modules.items() if under(name)}
    for name in saved:
        del sys.modules[name]
    sys.modules.update(stand_ins)
    try:
        yield
    finally:
        for name in [n for n in sys.modules if under(n)]:
            del sys.modules[name]
        sys.modules.update(saved)


def load(stand_ins: dict, *names: str, where: Path) -> list:
    """The modules ``names`` imported under ``stand_ins``; an import failure names ``where`` they were sought."""
    with installed(stand_ins):
        try:
            return [importlib.import_module(name) for name in names]
        except ImportError as exc:
            raise ImportError(f"kernel files in {where} could not be imported: {exc}") from exc

"""Triton's interpreter patches ``triton.language`` once per launch, not once per device-function call.

Triton 3.6's interpreter replaces ``triton.language``'s builtins by interpreted ones when a launch starts
(``GridExecutor.__call__`` → ``_patch_lang``, restored when it ends), and again on every call of a
``@triton.jit`` device function inside it (``InterpretedFunction.__call__``), in every program: an
``inspect.getmembers`` over ``tl``, ``tl.tensor``, ``tl.math`` and ``tl.core`` each time, about a fifth of
an interpreted example of the suite. Once a launch has patched a module, patching it again changes
nothing: the builtins are already replaced (the replacements are no builtins, so it skips them) and the
other attributes it sets are the same context-free functions (a device function's patch is never
restored: it stays in force anyway). This layer patches each ``triton.language`` module (``tl``; ``tl.core``,
which the standard library's device functions see) at most once per launch; kernels and results are
unchanged.
"""

import inspect
from functools import lru_cache

_launches = []  # per running launch: the ids of the triton.language modules patched in it so far


@lru_cache(maxsize=None)
def _langs(fn, tl) -> frozenset:
    """The triton.language modules ``fn`` sees (a function's module imports do not change)."""
    return frozenset(id(v) for v in fn.__globals__.values() if inspect.ismodule(v) and v in (tl, tl.core))


def install() -> None:
    """Idempotent."""
    import triton.language as tl
    from triton.runtime import interpreter as interp

    if getattr(interp._patch_lang, "_once_per_launch", False):
        return
    patch, launch = interp._patch_lang, interp.GridExecutor.__call__

    def patch_lang(fn):
        langs = _langs(fn, tl)
        if _launches and langs <= _launches[-1]:
            return interp._LangPatchScope()  # nothing to do, nothing to restore
        scope = patch(fn)
        if _launches:
            _launches[-1].update(langs)
        return scope

    def launched(self, *args, **kwargs):
        _launches.append(set())
        try:
            return launch(self, *args, **kwargs)
        finally:
            _launches.pop()

    patch_lang._once_per_launch = True
    interp._patch_lang = patch_lang
    interp.GridExecutor.__call__ = launched

"""Other implementations of SPEC.md's four entry points, each a module the suite can test with ``--impl``.

``adapters.sglang``: sglang's own Triton LoRA kernels of any release, called through SPEC.md's names and batch
info; ``adapters.sglang_release`` finds and loads a release (any file layout, a directory, a wheel or a version)
and says what it claims.
"""

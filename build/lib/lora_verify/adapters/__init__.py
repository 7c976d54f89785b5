"""Other implementations of SPEC.md's four entry points, each a module the suite can test with ``--impl``.

``adapters.sglang``: sglang's own Triton LoRA kernels, called through SPEC.md's names and batch info.
"""

"""Other implementations of SPEC.md's four entry points, each a module the suite can test with ``--impl``.

``adapters.sglang``: sglang's own Triton LoRA kernels of any release, called through SPEC.md's names and batch
info; ``adapters.sglang_release`` finds and loads a release (any file layout, a directory, a wheel or a version)
and says what it claims.
``adapters.sglang_csgmv``, ``adapters.sglang_triton_v2``: sglang's default (chunked SGMV) and triton_v2 backends.
``adapters.vllm``, ``adapters.vllm_batch_invariant``: vLLM's Triton LoRA ops, by default and batch-invariant.
``adapters.stubs`` (stand-in packages for a peer's kernel files) and ``adapters.batch`` (our batch info in the
peers' terms: rows, chunks, per-token slots) serve them.
"""

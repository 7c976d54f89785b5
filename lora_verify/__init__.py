"""lora_verify: the property suite, its tools and adapters for multi-LoRA kernels (SPEC.md's four operations).

Modules: ``ops`` (the operation table), ``strategies`` (hypothesis batches), ``inputs`` (batches made into
tensors), ``layouts`` (calling an implementation in a layout), ``bounds`` (the error bound), ``profiles``
(what an implementation claims), ``properties`` (what must hold), ``errors`` (bad-input cases), ``report``
(the verdict table), ``plugin`` (pytest), ``cases``/``replay``/``fuzz`` (saved cases and fuzzing),
``faults`` (crashes and hangs of the implementation survived), ``compiles`` (Triton compiles counted),
``mutants``/``mutate`` (planted bugs), ``stamp`` (the suite's pass, for the mutation runner), ``matrix`` (the
suite over many implementations: sglang's releases), ``cli`` (``lora-verify``); ``suite/`` holds the tests themselves.
"""

__version__ = "0.2.0"

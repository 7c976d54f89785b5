"""lora_verify: the property suite, its tools and adapters for multi-LoRA kernels (SPEC.md's four operations).

Modules: ``ops`` (the operation table), ``strategies`` (hypothesis batches), ``layers`` (real model layers),
``inputs`` (batches made into tensors), ``layouts`` (calling an implementation in a layout), ``bounds`` (the error
bound), ``profiles`` (what an implementation claims), ``properties`` (what must hold), ``scratch`` (memory nobody
wrote, poisoned), ``errors`` (bad-input cases), ``regimes`` (which kernel paths the examples took), ``report`` (the
verdict table), ``plugin`` (pytest), ``backend`` (interpreter or GPU), ``interpreter/`` (the interpreter made
faithful), ``cases``/``replay``/``fuzz`` (saved cases and fuzzing), ``faults`` (crashes and hangs survived),
``compiles`` (Triton compiles counted), ``durations`` (the longest tests first), ``sm90`` (the kernels compiled for
sm_90 on any machine), ``mutants``/``generated``/``mutate`` (planted and generated bugs), ``stamp`` (the suite's
pass, for the mutation runner), ``tight`` (launch arguments alone in their allocations, for memcheck), ``matrix``
(the suite over many implementations), ``adapters/`` (sglang's releases and backends, vLLM), ``bench/`` (kernel
timings), ``cli`` (``lora-verify``); ``suite/`` holds the tests themselves.
"""

__version__ = "0.2.0"

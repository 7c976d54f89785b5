"""The kernel benchmark (``lora-verify bench``): our kernels against every peer, on real layer shapes, one GPU.

Modules: ``grid`` (layers, batch shapes; each operation's shapes come from ``lora_verify.ops``), ``inputs``
(a case's tensors and batch infos; the float64 check on sampled rows), ``timing`` (CUDA-graph timing, copy
bandwidth, launch floor, the grid recorder), ``roofline`` (bytes an operation must move), ``peers`` (the
implementations timed), ``runner`` (the grid into rows), ``results`` (a row, derived ratios, JSON),
``tables`` and ``plot`` (markdown, terminal, png), ``cli`` (the command line).
"""

"""Picks how kernels run, before any kernel module is imported.

Without CUDA the kernels run under Triton's interpreter (``@triton.jit`` decides at decoration time, so this
must come first), made faithful to the compiler by ``lora_verify.interpreter`` (bf16 arithmetic) and
bounds- and race-checked (``lora_verify.interpreter.bounds``). The kernels' source is the same either way.
"""

import os

import torch


def has_cuda() -> bool:
    return torch.cuda.is_available()


def setup() -> bool:
    """Chooses the backend; returns whether kernels are interpreted."""
    if not has_cuda():
        os.environ.setdefault("TRITON_INTERPRET", "1")
    interpreting = os.environ.get("TRITON_INTERPRET") == "1"
    if interpreting:  # imported only now: Triton reads TRITON_INTERPRET when its modules load
        from lora_verify import interpreter

        interpreter.install()
    return interpreting


def worker_gpu(worker_id: str, gpu_count: int) -> int:
    """The GPU a pytest-xdist worker (``gw0``, ``gw1``, ...) takes: its own, round robin."""
    digits = worker_id.removeprefix("gw")
    return int(digits) % gpu_count if digits.isdigit() and gpu_count else 0


def worker_threads(workers: int, cores: int) -> int:
    """Torch's intra-op threads for one of ``workers`` processes sharing ``cores``: their share, at least one.
    Each process would otherwise start a thread per core: 30 workers on 32 cores ran 960 threads, and a
    gpu-profile property test that takes 85 s alone did not end in 530 s (docs/results/h200/README.md)."""
    return max(1, cores // max(workers, 1))


def share_cores():
    """In a pytest-xdist worker: this process's share of the cores it may run on."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    torch.set_num_threads(worker_threads(workers, len(os.sched_getaffinity(0))))


def device() -> torch.device:
    """This process's device: on a GPU machine each xdist worker pins its own GPU."""
    if not has_cuda():
        return torch.device("cpu")
    index = worker_gpu(os.environ.get("PYTEST_XDIST_WORKER", "gw0"), torch.cuda.device_count())
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def device_name(dev: torch.device) -> str:
    return torch.cuda.get_device_name(dev) if dev.type == "cuda" else "Triton interpreter"

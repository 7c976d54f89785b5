"""Worker-to-GPU assignment, checked with fake device counts (it runs on CPU machines too)."""

from lora_verify.backend import worker_gpu, worker_threads


def test_each_worker_takes_its_own_gpu_round_robin():
    assert [worker_gpu(f"gw{i}", 2) for i in range(5)] == [0, 1, 0, 1, 0]
    assert [worker_gpu(f"gw{i}", 8) for i in range(8)] == list(range(8))


def test_one_gpu_and_no_xdist_share_gpu_0():
    assert [worker_gpu(f"gw{i}", 1) for i in range(3)] == [0, 0, 0]
    assert worker_gpu("main", 4) == 0
    assert worker_gpu("gw3", 0) == 0


def test_workers_share_the_cores():
    assert worker_threads(30, 32) == 1
    assert worker_threads(4, 16) == 4
    assert worker_threads(3, 2) == 1
    assert worker_threads(0, 8) == 8

"""The runtime's result pool (runtime/tensorc_runtime/pool.py): large results reuse the memory
of dropped ones, and never the memory of a result (or a view of one) that is still alive."""

from __future__ import annotations

import gc
import threading

import numpy as np
from cpu_harness import build
from tensorc_runtime.pool import MIN_POOLED_BYTES, ResultPool

BIG = MIN_POOLED_BYTES // 4 + 7  # f32 elements: just over the pooling threshold


def test_a_dropped_buffer_is_reused_and_aligned() -> None:
    pool = ResultPool(limit_bytes=64 << 20)
    first = pool.take((BIG,), np.dtype(np.float32), BIG * 4)
    address = first.__array_interface__["data"][0]
    assert address % 64 == 0
    del first
    second = pool.take((BIG,), np.dtype(np.float32), BIG * 4)
    assert second.__array_interface__["data"][0] == address
    assert pool.reused == 1 and pool.allocated == 1


def test_live_results_and_their_views_are_never_reused() -> None:
    pool = ResultPool(limit_bytes=64 << 20)
    kept = pool.take((BIG,), np.dtype(np.float32), BIG * 4)
    view = kept[3:].reshape(-1)
    del kept
    other = pool.take((BIG,), np.dtype(np.float32), BIG * 4)
    assert not np.shares_memory(view, other)
    memory = memoryview(other)
    del other
    third = pool.take((BIG,), np.dtype(np.float32), BIG * 4)
    assert not np.shares_memory(np.asarray(memory), third)
    assert not np.shares_memory(view, third)
    assert pool.allocated == 3


def test_only_buffers_of_a_close_size_are_reused() -> None:
    pool = ResultPool(limit_bytes=64 << 20)
    pool.take((4 * BIG,), np.dtype(np.float32), 16 * BIG)  # dropped at once
    pool.take((BIG,), np.dtype(np.float32), 4 * BIG)  # a quarter: not worth holding on to
    assert pool.reused == 0


def test_unused_buffers_beyond_the_limit_are_released() -> None:
    limit = 3 * MIN_POOLED_BYTES
    pool = ResultPool(limit_bytes=limit)
    for size in range(1, 8):  # different sizes: nothing is reusable
        nbytes = size * 2 * MIN_POOLED_BYTES
        pool.take((nbytes,), np.dtype(np.uint8), nbytes)
    gc.collect()
    assert pool.retained_bytes <= limit + 16 * MIN_POOLED_BYTES  # at most the last one kept


def test_a_zero_limit_turns_the_pool_off() -> None:
    pool = ResultPool(limit_bytes=0)
    pool.take((BIG,), np.dtype(np.float32), BIG * 4)  # dropped at once
    pool.take((BIG,), np.dtype(np.float32), BIG * 4)
    assert pool.reused == 0 and pool.retained_bytes == 0


def test_native_calls_keep_earlier_results_intact() -> None:
    module = build("def f(x: f32[N]) -> f32[N] { return x * 2.0 + 1.0 }", 2)
    x = np.arange(BIG, dtype=np.float32)
    kept = [module.f(x + k) for k in range(3)]
    for _ in range(5):
        module.f(x)  # dropped at once: their memory is reused
    for k, result in enumerate(kept):
        np.testing.assert_array_equal(result, (x + k) * 2 + 1)
    assert len({r.__array_interface__["data"][0] for r in kept}) == 3


def test_pooled_results_from_many_threads_do_not_overlap() -> None:
    module = build("def f(x: f32[N]) -> f32[N] { return x + 1.0 }", 2)
    failures: list[str] = []

    def work(seed: int) -> None:
        x = np.full(BIG, float(seed), np.float32)
        for _ in range(50):
            result = module.f(x)
            if not np.all(result == seed + 1):
                failures.append(f"thread {seed} saw another thread's result")

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures

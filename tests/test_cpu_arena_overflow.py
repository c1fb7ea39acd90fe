"""The CPU arena's size, computed from symbolic dims, must not wrap around `int64`.

The program's inputs are small (N floats) but its temporaries take 4*N**3 bytes each: for
large N the byte count overflows, and the entry point must return the ABI's code 3
(`MemoryError`) instead of allocating a wrapped, too small arena and writing past it. The
overflowing calls run in a subprocess, so that a crash fails the test instead of pytest.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tensorc

SOURCE = """
def t(x: f32[N]) -> f32 {
    a = broadcast_to(x, [N, N, N]) * 2.0
    b = transpose(a, [2, 1, 0])
    return sum(b @ a)
}
"""

CALL = textwrap.dedent(
    """
    import sys

    import numpy as np

    import tensorc

    module = tensorc.compile(sys.argv[1])
    try:
        module.t(np.ones(int(sys.argv[2]), np.float32))
    except MemoryError as error:
        print(f"MemoryError: {error}")
    else:
        print("no error")
    """
)


def test_small_sizes_still_compute() -> None:
    module = tensorc.compile(SOURCE)
    for n in (1, 4, 7):
        assert module.t(np.ones(n, np.float32)) == pytest.approx(4.0 * n**4)


@pytest.mark.parametrize(
    "n",
    [
        100_000,  # 1.2e16 bytes: no overflow, the allocation itself fails
        2**20,  # 3 * 2**62 bytes: fits in uint64, over the arena limit
        1_300_000,  # each temporary fits in int64, their sum wraps (to a huge size)
        2_500_000,  # N**3 fits in int64, 4 * N**3 wraps (to a huge size)
        2**21,  # 4 * N**3 = 2**65: the arena's size wraps to 0 (crashed before the fix)
        3 * 2**21,  # wraps to 0 too, from a size that is not a power of two
        2**22,  # N**3 = 2**66 itself wraps to 0
    ],
)
def test_huge_temporaries_raise_memory_error(tmp_path, n: int) -> None:
    source = tmp_path / "arena_overflow.tc"
    source.write_text(SOURCE)
    completed = subprocess.run(
        [sys.executable, "-c", CALL, str(source), str(n)],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ),
        check=False,
    )
    assert completed.returncode == 0, (
        f"exit status {completed.returncode} (a negative status is a signal)\n"
        f"{completed.stdout}{completed.stderr}"
    )
    assert completed.stdout.startswith("MemoryError: out of memory"), completed.stdout

"""Random well-typed programs (tests/progen.py) on the CPU backend: each one compiled at -O0
and at -O3 gives the interpreter's results, for symbolic sizes 0, 1, 7, 13 and 1000.

Tolerances: the random-program suite's (f32 rtol 2e-4, atol 2e-5; f64 rtol 1e-9, atol 1e-11):
programs chain reductions, matmuls and normalisations, whose sums the backend reassociates.
"""

from __future__ import annotations

import numpy as np
from cpu_harness import build
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from progen import programs

SETTINGS = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
    database=None,
)
SIZES = st.fixed_dictionaries(
    {"N": st.sampled_from([0, 1, 7, 13, 1000]), "M": st.sampled_from([0, 1, 3, 13])}
)


def _tolerance(dtype: np.dtype) -> dict[str, float]:
    return {"rtol": 2e-4, "atol": 2e-5} if dtype == np.float32 else {"rtol": 1e-9, "atol": 1e-11}


@settings(max_examples=100, **SETTINGS)
@given(programs(), SIZES, st.sampled_from([0, 3]))
def test_random_programs_match_the_interpreter(program, sizes, level) -> None:
    cpu = build(program.source, level)
    reference = build(program.source, level, target="interp")
    rng = np.random.default_rng(0)
    arguments = program.inputs(rng, sizes)
    want = reference.f(*arguments)
    got = cpu.f(*arguments)
    if not isinstance(want, tuple):
        got, want = (got,), (want,)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, equal_nan=True, **_tolerance(g.dtype))

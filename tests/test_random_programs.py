"""Random well-typed programs (tests/progen.py): the frontend accepts them, the IR text round
trips, the interpreter runs them, and every -O pipeline preserves their results."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from progen import programs, sizes_strategy

from tensorc.codegen.cpu.pipeline import FUSED_PIPELINE
from tensorc.frontend import compile_source
from tensorc.interp.interpreter import Interpreter
from tensorc.ir import parse_module, print_module, verify_module
from tensorc.passes import PassManager, parse_pipeline, pipeline_for

SETTINGS = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)


def _run(module, program, sizes, seed=0):
    rng = np.random.default_rng(seed)
    return Interpreter(module).run("f", program.inputs(rng, sizes))


@settings(max_examples=150, **SETTINGS)
@given(programs(), sizes_strategy())
def test_ir_round_trips_and_interpreter_runs(program, sizes) -> None:
    module = compile_source(program.source, "random.tc")
    text = print_module(module)
    again = parse_module(text, "random.tcir")
    verify_module(again)
    assert print_module(again) == text
    located = print_module(module, print_locations=True)
    assert print_module(parse_module(located)) == text
    results = _run(module, program, sizes)
    assert len(results) == len(program.results)
    for result, declared in zip(results, program.results):
        assert result.dtype == np.dtype({"f32": "float32", "f64": "float64"}[declared.dtype])


def _tolerance(dtype: np.dtype) -> dict[str, float]:
    return {"rtol": 2e-4, "atol": 2e-5} if dtype == np.float32 else {"rtol": 1e-9, "atol": 1e-11}


@settings(max_examples=300, **SETTINGS)
@given(programs(), sizes_strategy(), st.sampled_from([0, 1, 2, 3]))
def test_every_pipeline_preserves_results(program, sizes, level) -> None:
    reference_module = compile_source(program.source, "random.tc")
    expected = _run(reference_module, program, sizes)
    module = compile_source(program.source, "random.tc")
    PassManager(pipeline_for(level), verify_each=True).run(module)
    for got, want in zip(_run(module, program, sizes), expected, strict=True):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, equal_nan=True, **_tolerance(got.dtype))


@settings(max_examples=60, **SETTINGS)
@given(programs(), st.sampled_from([1, 2, 3]))
def test_a_pass_that_reports_no_change_changed_nothing(program, level) -> None:
    """The pass manager skips the verifier after a pass that says it changed nothing
    (`ModulePass.run` returning False), so that answer must be exact: after every pass of an
    -O pipeline and of the backend's preparation, on random programs, a False comes only with
    the printed module as it was."""
    module = compile_source(program.source, "random.tc")
    for pass_ in [*pipeline_for(level), *parse_pipeline(FUSED_PIPELINE)]:
        before = print_module(module)
        if pass_.run(module) is False:
            assert print_module(module) == before, pass_.name
        verify_module(module)

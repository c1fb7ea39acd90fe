"""Each pass says whether it changed the module, and the pass manager verifies only after the
passes that did (`pass_manager.py`): a pass with nothing to do costs no verifier run."""

from __future__ import annotations

import pytest

from tensorc.driver import CompileOptions, Source, parse_source
from tensorc.ir.printer import print_module
from tensorc.passes import PassManager, parse_pipeline, pipeline_for
from tensorc.passes import pass_manager as pass_manager_module

PROGRAM = """
def helper(x: f32[N, K]) -> f32[N, K] { return tanh(x) * 1.0 }
def step(x: f32[N, K], w: f32[K, M], y: i32[N]) -> (f32[K, M], f32) {
    z = helper(x) @ w + 0.0
    loss = mean(cross_entropy(z, y))
    unused = exp(z)
    return grad(loss, w), loss
}
"""
PASSES = ["inline", "stabilize", "autodiff", "canonicalize", "cse", "fold", "decompose",
          "fusion", "dce"]


def _module():
    return parse_source(Source.load(PROGRAM))


@pytest.mark.parametrize("name", PASSES)
def test_a_pass_reports_no_change_on_a_module_it_left_as_it_was(name: str) -> None:
    module = _module()
    PassManager(pipeline_for(2)).run(module)
    before = print_module(module)
    (single,) = parse_pipeline(name)
    assert single.run(module) is False
    assert print_module(module) == before


@pytest.mark.parametrize(
    ("prefix", "name"),
    [("", "inline"), ("inline", "autodiff"), ("inline", "canonicalize"),
     ("inline,autodiff", "cse"), ("inline,autodiff,decompose", "fusion"), ("inline", "dce"),
     ("inline,autodiff", "decompose")],
)
def test_a_pass_that_rewrote_the_module_says_so(prefix: str, name: str) -> None:
    module = _module()
    if prefix:
        PassManager(parse_pipeline(prefix)).run(module)
    before = print_module(module)
    (single,) = parse_pipeline(name)
    assert single.run(module) is True
    assert print_module(module) != before


def test_the_verifier_runs_only_after_passes_that_changed_something(monkeypatch) -> None:
    verified: list[int] = []
    real = pass_manager_module.verify_module
    monkeypatch.setattr(
        pass_manager_module, "verify_module", lambda m: verified.append(1) or real(m)
    )
    module = _module()
    PassManager(parse_pipeline("inline,autodiff")).run(module)
    assert len(verified) == 2
    verified.clear()
    PassManager(parse_pipeline("inline,autodiff,inline")).run(module)  # nothing left to do
    assert verified == []


def test_a_pass_that_does_not_say_is_verified(monkeypatch) -> None:
    """A pass returning None (one written before the protocol) still gets the verifier."""
    verified: list[int] = []
    monkeypatch.setattr(pass_manager_module, "verify_module", lambda m: verified.append(1))
    (inline,) = parse_pipeline("inline")
    monkeypatch.setattr(type(inline), "run", lambda self, module: None)
    PassManager([inline]).run(_module())
    assert verified == [1]


def test_the_compile_pipeline_still_verifies_what_it_changes() -> None:
    options = CompileOptions(target="interp")
    module = _module()
    manager = PassManager(options.passes(), options.verify_each)
    manager.run(module)
    assert "tc.grad" not in print_module(module)

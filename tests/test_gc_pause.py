"""tensorc pauses Python's cyclic garbage collector while it compiles (`tensorc/gc_pause.py`),
and must leave it as it found it, errors included."""

from __future__ import annotations

import gc

import pytest

import tensorc
from tensorc.gc_pause import cycle_collection_paused


@pytest.fixture
def collector_state():
    was_running = gc.isenabled()
    yield
    if was_running:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_off_inside_and_back_on_after(collector_state) -> None:
    gc.enable()
    with cycle_collection_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), cycle_collection_paused():
        raise RuntimeError("a failing compile")
    assert gc.isenabled()


def test_a_collector_the_caller_turned_off_stays_off(collector_state) -> None:
    gc.disable()
    tensorc.compile("def f(x: f32[N]) -> f32[N] { return x + 1 }", target="interp")
    assert not gc.isenabled()


def test_compiles_leave_the_collector_running(collector_state) -> None:
    gc.enable()
    tensorc.compile("def f(x: f32[N]) -> f32[N] { return x * 2 }", target="interp")
    assert gc.isenabled()
    with pytest.raises(tensorc.CompileError):
        tensorc.compile("def f(x: f32[N]) -> f32[N] { return y }", target="interp")
    assert gc.isenabled()

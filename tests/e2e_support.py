"""Shared helpers of the end-to-end tests: compile a source once per opt level (cached), call it,
and the dtype names of the language as NumPy types."""

from __future__ import annotations

import textwrap

import numpy as np

import tensorc

LEVELS = (0, 2)
NP = {
    "f16": np.float16,
    "f32": np.float32,
    "f64": np.float64,
    "i32": np.int32,
    "i64": np.int64,
    "bool": np.bool_,
}
_MODULES: dict[tuple[str, int, str], object] = {}


def build(source: str, level: int = 2, target: str = "interp"):
    """`source` compiled for `target` at `level`, once per (source, level, target)."""
    key = (source, level, target)
    if key not in _MODULES:
        _MODULES[key] = tensorc.compile(textwrap.dedent(source), target=target, opt_level=level)
    return _MODULES[key]


def call(level: int, source: str, *args, fn: str = "f", **kwargs):
    return getattr(build(source, level), fn)(*args, **kwargs)

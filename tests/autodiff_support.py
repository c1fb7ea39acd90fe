"""Helpers for the autodiff tests: compile a loss and its gradient, and check the gradient
against finite differences computed in f64 by the reference interpreter."""

from __future__ import annotations

import tempfile
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import tensorc
from tensorc.passes import PIPELINES, available_passes

TOLERANCE = 1e-6
STEP = 1e-3


def pipeline_items(pipeline: str) -> list[str]:
    """`a,b{x=1,y=2},c` -> ["a", "b{x=1,y=2}", "c"]."""
    items, depth, current = [], 0, ""
    for char in pipeline:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += char
    items.append(current.strip())
    return [item for item in items if item]


def pass_name(item: str) -> str:
    return item.split("{")[0].strip()


def registered(pipeline: str) -> str:
    """The passes of `pipeline` that are registered now (others may not exist yet)."""
    names = set(available_passes())
    return ",".join(item for item in pipeline_items(pipeline) if pass_name(item) in names)


def pipeline_passes(label: str) -> str:
    """The pass list a gradient check runs: right after autodiff, or all of -O2."""
    if label == "autodiff":
        return registered("inline,autodiff")
    optimised = registered(PIPELINES[2])
    if "autodiff" in map(pass_name, pipeline_items(optimised)):
        return optimised
    # Until -O2 lists autodiff (test_pipelines_run_autodiff_after_inline checks that it does),
    # run it in front so that the rest of -O2 still sees the backward code.
    return ",".join(filter(None, [registered("inline,autodiff"), optimised]))


PIPELINE_LABELS = ("autodiff", "O2")


@dataclass
class GradCase:
    """A float loss of some parameters, and the parameters to differentiate it by."""

    name: str
    params: str
    body: str
    wrt: Sequence[str]
    inputs: Mapping[str, np.ndarray]
    tolerance: float = TOLERANCE
    extra: dict = field(default_factory=dict)

    def source(self) -> str:
        body = textwrap.indent(textwrap.dedent(self.body).strip(), "    ")
        names = [f"g{i}" for i in range(len(self.wrt))]
        wrt = self.wrt[0] if len(self.wrt) == 1 else f"[{', '.join(self.wrt)}]"
        return (
            f"def loss_fn({self.params}) -> f64 {{\n{body}\n    return loss\n}}\n\n"
            f"def grad_fn({self.params}) {{\n{body}\n"
            f"    {', '.join(names)} = grad(loss, {wrt})\n"
            f"    return {', '.join(names)}\n}}\n"
        )

    def arguments(self) -> list[np.ndarray]:
        return list(self.inputs.values())


@dataclass
class IRGradCase(GradCase):
    """A case written in IR text, for ops the frontend does not emit: `params` like
    `%x: f64[3]`, `body` IR lines that define `%loss`, and `wrt` value names (`%x`)."""

    def source(self) -> str:
        body = textwrap.indent(textwrap.dedent(self.body).strip(), "  ")
        types = {p.split(":")[0].strip(): p.split(":", 1)[1].strip() for p in _split(self.params)}
        results = ", ".join(types[w] for w in self.wrt)
        names = ", ".join(f"%g{i}" for i in range(len(self.wrt)))
        return (
            f"func.func @loss_fn({self.params}) -> f64 {{\n{body}\n"
            f"  func.return %loss : (f64) -> ()\n}}\n"
            f"func.func @grad_fn({self.params}) -> ({results}) {{\n{body}\n"
            f"  {names} = tc.grad %loss, {', '.join(self.wrt)} : (f64, {results}) -> ({results})\n"
            f"  func.return {names} : ({results}) -> ()\n}}\n"
        )


def _split(params: str) -> list[str]:
    """`%x: f64[3, 4], %i: i32[2]` -> each parameter (commas inside brackets kept)."""
    items, depth, current = [], 0, ""
    for char in params:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    return [item.strip() for item in items + [current] if item.strip()]


def compile_program(source: str, label: str = "autodiff", is_ir: bool = False):
    """`source` (`.tc` text, or `.tcir` text when `is_ir`) compiled for the interpreter with
    the pipeline `label`."""
    if not is_ir:
        return tensorc.compile(source, target="interp", passes=pipeline_passes(label))
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "case.tcir"
        path.write_text(source)
        return tensorc.compile(path, target="interp", passes=pipeline_passes(label))


def compile_case(case: GradCase, label: str):
    return compile_program(case.source(), label, is_ir=isinstance(case, IRGradCase))


def finite_difference(
    loss: Callable[..., np.ndarray], arguments: list[np.ndarray], position: int
) -> np.ndarray:
    """d loss / d arguments[position] by the 4-point central difference (error O(h**4))."""
    point = arguments[position]
    gradient = np.zeros(point.shape, dtype=np.float64)

    def loss_at(index: tuple[int, ...], delta: float) -> float:
        shifted = np.array(point, dtype=np.float64, copy=True)
        shifted[index] += delta
        values = list(arguments)
        values[position] = shifted
        return float(loss(*values))

    for index in np.ndindex(point.shape):
        near = loss_at(index, STEP) - loss_at(index, -STEP)
        far = loss_at(index, 2 * STEP) - loss_at(index, -2 * STEP)
        gradient[index] = (8 * near - far) / (12 * STEP)
    return gradient


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| over max |expected| (at least 1e-6)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        return float("inf")
    if actual.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(expected))), 1e-6)
    return float(np.max(np.abs(actual - expected))) / scale


MAX_ERRORS: dict[str, float] = {}


def as_tuple(result) -> tuple[np.ndarray, ...]:
    return result if isinstance(result, tuple) else (result,)


def check_case(case: GradCase, label: str) -> float:
    """Compile `case` with the pipeline `label`, compare every gradient with finite
    differences of the loss, and return the largest relative error."""
    module = compile_case(case, label)
    arguments = case.arguments()
    gradients = as_tuple(module.grad_fn(*arguments))
    names = list(case.inputs)
    worst = 0.0
    for name, gradient in zip(case.wrt, gradients):
        position = names.index(name.lstrip("%"))
        assert gradient.shape == arguments[position].shape, (name, gradient.shape)
        expected = finite_difference(module.loss_fn, arguments, position)
        error = relative_error(gradient, expected)
        assert error < case.tolerance, (
            f"{case.name} [{label}] d/d{name}: relative error {error:.3g}\n"
            f"autodiff:\n{gradient}\nfinite differences:\n{expected}"
        )
        worst = max(worst, error)
    MAX_ERRORS[f"{case.name}[{label}]"] = worst
    return worst

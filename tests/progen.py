"""Random well-typed tensorc programs for differential testing (hypothesis strategies).

A program is .tc source text plus the information needed to call it: parameter dtypes and
shapes over the symbolic sizes N and M. Every generated program type-checks by construction;
values are kept in a numerically tame range (bounded functions before exp, abs before log/sqrt)
so that every pipeline and backend must agree within tolerance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

Shape = tuple[str | int, ...]

UNARY_SAFE = {
    "tanh": "tanh({})",
    "sigmoid": "sigmoid({})",
    "relu": "relu({})",
    "abs": "abs({})",
    "neg": "-{}",
    "square": "square({})",
    "sin": "sin({})",
    "cos": "cos({})",
    "exp_tanh": "exp(tanh({}))",
    "log1p_abs": "log1p(abs({}))",
    "sqrt_abs": "sqrt(abs({}) + 1.0)",
    "gelu": "gelu({})",
    "gelu_tanh": "gelu({}, approximate=true)",
    "erf": "erf({})",
    "softplus_like": "log(1.0 + exp(tanh({})))",
    "floor": "floor({})",
    "clip": "clip({}, -0.5, 0.5)",
    "stop": "stop_gradient({})",
}
BINARY = ("+", "-", "*", "maximum", "minimum", "where_gt", "div_safe")
REDUCE = ("sum", "mean", "max", "min")


@dataclass
class Var:
    name: str
    dtype: str
    shape: Shape


@dataclass
class Program:
    source: str
    params: list[Var]
    results: list[Var]
    statements: int = 0
    ops: list[str] = field(default_factory=list)

    def inputs(self, rng: np.random.Generator, sizes: dict[str, int]) -> list[np.ndarray]:
        arrays = []
        for param in self.params:
            shape = tuple(sizes[d] if isinstance(d, str) else d for d in param.shape)
            values = rng.standard_normal(shape)
            arrays.append(np.asarray(values, dtype=np.dtype(_NUMPY[param.dtype])))
        return arrays


_NUMPY = {"f32": "float32", "f64": "float64", "i32": "int32"}


def _type_text(var: Var) -> str:
    if not var.shape:
        return var.dtype
    return f"{var.dtype}[{', '.join(str(d) for d in var.shape)}]"


class _Builder:
    def __init__(self, draw, dtype: str, allow_matmul: bool) -> None:
        self.draw = draw
        self.dtype = dtype
        self.lines: list[str] = []
        self.vars: list[Var] = []
        self.ops: list[str] = []
        self.counter = 0
        self.allow_matmul = allow_matmul
        self.used: set[str] = set()

    def fresh(self) -> str:
        self.counter += 1
        return f"t{self.counter}"

    def emit(self, expr: str, shape: Shape, op: str) -> Var:
        self.used.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expr))
        var = Var(self.fresh(), self.dtype, shape)
        self.lines.append(f"    {var.name} = {expr}")
        self.vars.append(var)
        self.ops.append(op)
        return var

    def pick(self, predicate=lambda v: True) -> Var | None:
        candidates = [v for v in self.vars if predicate(v)]
        if not candidates:
            return None
        return self.draw(st.sampled_from(candidates))

    def step(self) -> None:
        kind = self.draw(
            st.sampled_from(
                [
                    "unary",
                    "unary",
                    "binary",
                    "binary",
                    "reduce",
                    "scalar",
                    "shape",
                    "matmul",
                    "nn",
                    "slice",
                ]
            )
        )
        getattr(self, f"step_{kind}")()

    def step_unary(self) -> None:
        x = self.pick()
        name = self.draw(st.sampled_from(sorted(UNARY_SAFE)))
        self.emit(UNARY_SAFE[name].format(x.name), x.shape, name)

    def step_binary(self) -> None:
        x = self.pick()
        y = self.pick(lambda v: _broadcastable(v.shape, x.shape))
        op = self.draw(st.sampled_from(BINARY))
        shape = _broadcast(x.shape, y.shape)
        if op in ("+", "-", "*"):
            expr = f"{x.name} {op} {y.name}"
        elif op == "where_gt":
            expr = f"where({x.name} > {y.name}, {x.name}, {y.name})"
        elif op == "div_safe":
            expr = f"{x.name} / (abs({y.name}) + 1.0)"
        else:
            expr = f"{op}({x.name}, {y.name})"
        self.emit(expr, shape, op)

    def step_scalar(self) -> None:
        x = self.pick()
        value = self.draw(st.sampled_from(["2.0", "0.5", "3", "1e-3", "-1.5"]))
        op = self.draw(st.sampled_from(["+", "*", "-", "**2"]))
        expr = f"{x.name} ** 2" if op == "**2" else f"{x.name} {op} {value}"
        self.emit(expr, x.shape, "scalar" + op)

    def step_reduce(self) -> None:
        x = self.pick(lambda v: len(v.shape) >= 1)
        if x is None:
            return self.step_unary()
        op = self.draw(st.sampled_from(REDUCE))
        axis = self.draw(st.integers(-len(x.shape), len(x.shape) - 1))
        keep = self.draw(st.booleans())
        normalized = axis % len(x.shape)
        if keep:
            shape = tuple(1 if i == normalized else d for i, d in enumerate(x.shape))
        else:
            shape = tuple(d for i, d in enumerate(x.shape) if i != normalized)
        keep_text = ", keepdims=true" if keep else ""
        self.emit(f"{op}({x.name}, axis={axis}{keep_text})", shape, op)

    def step_shape(self) -> None:
        x = self.pick(lambda v: len(v.shape) >= 1)
        if x is None:
            return self.step_unary()
        op = self.draw(st.sampled_from(["T", "expand", "flatten"]))
        if op == "T":
            self.emit(f"{x.name}.T", tuple(reversed(x.shape)), "transpose")
        elif op == "expand":
            self.emit(f"expand_dims({x.name}, 0)", (1, *x.shape), "expand_dims")
        else:
            static = all(isinstance(d, int) for d in x.shape)
            if len(x.shape) == 1 or not static:
                return self.step_unary()
            size = int(np.prod(x.shape))
            self.emit(f"reshape({x.name}, [-1])", (size,), "reshape")

    def step_slice(self) -> None:
        x = self.pick(lambda v: len(v.shape) >= 1)
        if x is None:
            return self.step_unary()
        first = x.shape[0]
        if isinstance(first, int):
            if first < 2:
                return self.step_unary()
            self.emit(f"{x.name}[1:]", (first - 1, *x.shape[1:]), "slice")
        else:
            self.emit(f"{x.name}[::2]", (f"({first} + 1) // 2", *x.shape[1:]), "slice_step")

    def step_matmul(self) -> None:
        if not self.allow_matmul:
            return self.step_unary()
        x = self.pick(lambda v: len(v.shape) == 2 and v.shape[1] == 3)
        if x is None:
            return self.step_unary()
        self.emit(f"{x.name} @ w", (x.shape[0], 4), "matmul")

    def step_nn(self) -> None:
        x = self.pick(lambda v: len(v.shape) >= 1)
        if x is None:
            return self.step_unary()
        op = self.draw(st.sampled_from(["softmax", "log_softmax", "logsumexp", "var"]))
        if op in ("softmax", "log_softmax"):
            self.emit(f"{op}({x.name}, axis=-1)", x.shape, op)
        else:
            self.emit(f"{op}({x.name}, axis=-1)", x.shape[:-1], op)


def _broadcastable(a: Shape, b: Shape) -> bool:
    for x, y in zip(reversed(a), reversed(b)):
        if x != y and x != 1 and y != 1:
            return False
    return True


def _broadcast(a: Shape, b: Shape) -> Shape:
    rank = max(len(a), len(b))
    pa = (1,) * (rank - len(a)) + tuple(a)
    pb = (1,) * (rank - len(b)) + tuple(b)
    return tuple(y if x == 1 else x for x, y in zip(pa, pb))


PARAM_SHAPES: list[Shape] = [("N", 3), (3,), ("N",), (), ("N", "M"), (2, "N", 3), (1, 3), ("M",)]


@st.composite
def programs(draw, dtype: str | None = None, max_statements: int = 8, allow_matmul: bool = True):
    """A random well-typed program `def f(...) -> ... { ... }` with its parameters."""
    dtype = dtype or draw(st.sampled_from(["f32", "f64"]))
    builder = _Builder(draw, dtype, allow_matmul)
    count = draw(st.integers(1, 3))
    shapes = draw(st.lists(st.sampled_from(PARAM_SHAPES), min_size=count, max_size=count))
    params = [Var(f"p{i}", dtype, shape) for i, shape in enumerate(shapes)]
    builder.vars.extend(params)
    if allow_matmul:
        params.append(Var("w", dtype, (3, 4)))
    for _ in range(draw(st.integers(1, max_statements))):
        builder.step()
    body_vars = builder.vars[len(shapes) :]
    leaves = [v for v in body_vars if v.name not in builder.used] or [builder.vars[-1]]
    results = leaves[-4:]
    header = ", ".join(f"{p.name}: {_type_text(p)}" for p in params)
    result_types = ", ".join(_type_text(r) for r in results)
    if len(results) > 1:
        result_types = f"({result_types})"
    source = "\n".join(
        [
            f"def f({header}) -> {result_types} {{",
            *builder.lines,
            f"    return {', '.join(r.name for r in results)}",
            "}",
            "",
        ]
    )
    return Program(source, params, results, len(builder.lines), builder.ops)


def sizes_strategy():
    return st.fixed_dictionaries(
        {"N": st.sampled_from([1, 2, 5, 7]), "M": st.sampled_from([1, 3, 4])}
    )

"""Function signatures as stored in an artifact's manifest, and argument binding.

A :class:`Signature` describes one compiled function: its parameters and results (name, dtype
and symbolic shape) and the run-time constraints on its dimensions. Its manifest form is a
JSON-able dict::

    {"name": "mlp",
     "params": [{"name": "x", "dtype": "f32", "shape": ["N", "784"]},
                {"name": "lr", "dtype": "f32", "shape": []}],
     "results": [{"name": "result0", "dtype": "f32", "shape": ["N", "10"]}],
     "constraints": [{"kind": "eq", "lhs": "N", "rhs": "M", "error": "ValueError",
                      "message": "model.tc:3:9: x + y: dimension N of x and M of y ..."}]}

Parameter shapes use only names and integer literals; result shapes and constraint sides are
dimension expressions (:mod:`tensorc_runtime.dims`).

:meth:`Signature.bind` checks and converts the arguments of a call before any native code
runs (SPEC section 4) and computes the dimension environment and the result shapes. It is on
the hot path of every native call, so the per-parameter checks are built once, at
construction. Measured on the development machine (Python 3.11, NumPy 2.4)::

    sig = Signature.from_dict(...)  # f(x: f32[N, 4], w: f32[4, M], b: f32[M]) -> f32[N, M]
    timeit.timeit(lambda: sig.bind((x, w, b)), number=100_000) / 100_000   # ~3 us
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .dims import CompiledDim, compile_dim
from .dtypes import (
    BF16_UNSUPPORTED_MESSAGE,
    FLOAT_DTYPES,
    INT_DTYPES,
    check_dtype_name,
    int_range,
    numpy_spelling,
    to_numpy_dtype,
)
from .errors import ArtifactError

__all__ = ["BoundCall", "Constraint", "Signature", "TensorSpec"]

_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_LITERAL_RE = re.compile(r"[0-9]+\Z")
_CONSTRAINT_OPERATORS: dict[str, tuple[Callable[[int, int], bool], str]] = {
    "eq": (operator.eq, "=="),
    "lt": (operator.lt, "<"),
    "le": (operator.le, "<="),
}
_CONSTRAINT_ERRORS: dict[str, type[Exception]] = {
    "ValueError": ValueError,
    "IndexError": IndexError,
}
_ARRAY_PROTOCOLS = ("__array__", "__array_interface__", "__array_struct__")

Checker = Callable[[Any, dict[str, int]], np.ndarray]


# -- specs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorSpec:
    """A parameter or result: its name, dtype name and shape (dimension expression texts)."""

    name: str
    dtype: str
    shape: tuple[str, ...]

    @property
    def rank(self) -> int:
        return len(self.shape)

    def type_str(self) -> str:
        """The tensorc type, e.g. ``f32[N, 784]``, or ``f32`` for a scalar."""
        if not self.shape:
            return self.dtype
        return f"{self.dtype}[{', '.join(self.shape)}]"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorSpec:
        shape = data["shape"]
        if not isinstance(shape, (list, tuple)):
            raise ValueError(f"shape of {data['name']!r} must be a list, got {shape!r}")
        return cls(
            name=data["name"],
            dtype=data["dtype"],
            shape=tuple(str(dim) if isinstance(dim, int) else dim for dim in shape),
        )


@dataclass(frozen=True)
class Constraint:
    """A run-time check on dimensions: ``lhs == rhs`` (eq), ``lhs < rhs`` (lt), ``lhs <= rhs``
    (le). On failure, ``error`` (``"ValueError"`` or ``"IndexError"``) is raised with
    ``message`` followed by the values of the names involved."""

    kind: str
    lhs: str
    rhs: str
    error: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "lhs": self.lhs,
            "rhs": self.rhs,
            "error": self.error,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Constraint:
        return cls(
            kind=data["kind"],
            lhs=str(data["lhs"]),
            rhs=str(data["rhs"]),
            error=data.get("error", "ValueError"),
            message=data.get("message", ""),
        )


@dataclass(slots=True)
class BoundCall:
    """The checked arguments of one call, ready for native code.

    ``arrays`` are C-contiguous, aligned, native-byte-order arrays of exactly the parameter
    dtypes (scalars as 0-d arrays); they are the caller's own arrays when no conversion was
    needed, so native code must not write to them. ``dims`` maps each symbolic dimension to
    its value; ``result_shapes`` and ``result_dtypes`` describe the results to allocate.
    """

    arrays: list[np.ndarray]
    dims: dict[str, int]
    result_shapes: list[tuple[int, ...]]
    result_dtypes: list[np.dtype]


class _SymbolConflict(Exception):
    """Internal: a symbolic dimension disagrees with its earlier binding."""

    def __init__(
        self,
        param_index: int,
        symbol: str,
        axis: int,
        extent: int,
        bound: int,
        shape: tuple[int, ...],
    ) -> None:
        super().__init__(symbol)
        self.param_index = param_index
        self.symbol = symbol
        self.axis = axis
        self.extent = extent
        self.bound = bound
        self.shape = shape


# -- signature -------------------------------------------------------------------------------


class Signature:
    """The signature of one compiled function; see the module docstring."""

    def __init__(
        self,
        name: str,
        params: Iterable[TensorSpec],
        results: Iterable[TensorSpec],
        constraints: Iterable[Constraint] = (),
    ) -> None:
        self._name = name
        self._params = tuple(params)
        self._results = tuple(results)
        self._constraints = tuple(constraints)
        self._validate()
        self._symbols = _symbols_in_order(self._params)
        self._symbol_origins = _symbol_origins(self._params)
        self._param_indices = {param.name: index for index, param in enumerate(self._params)}
        self._arity = len(self._params)
        self._numpy_unsupported = self._unsupported_dtype_message()
        self._checkers: tuple[Checker, ...] = ()
        self._result_dtypes: tuple[np.dtype, ...] = ()
        if self._numpy_unsupported is None:
            self._checkers = tuple(
                _make_checker(self._name, index, param) for index, param in enumerate(self._params)
            )
            self._result_dtypes = tuple(to_numpy_dtype(result.dtype) for result in self._results)
        self._result_shape_fns = tuple(_make_result_shape(result) for result in self._results)
        self._constraint_checks = tuple(
            _make_constraint_check(constraint, self._symbols) for constraint in self._constraints
        )

    # -- construction and serialization --

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        """Build from the manifest form; ``ArtifactError`` if it is malformed."""
        if not isinstance(data, Mapping):
            raise ArtifactError(f"invalid function signature in manifest: {data!r}")
        try:
            return cls(
                name=data["name"],
                params=[TensorSpec.from_dict(param) for param in data["params"]],
                results=[TensorSpec.from_dict(result) for result in data["results"]],
                constraints=[Constraint.from_dict(c) for c in data.get("constraints", [])],
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            described = f"missing key {error}" if isinstance(error, KeyError) else str(error)
            function = data.get("name", "?")
            raise ArtifactError(
                f"invalid signature of function {function!r} in manifest: {described}"
            ) from error

    def to_dict(self) -> dict[str, Any]:
        """The manifest form (JSON-able)."""
        return {
            "name": self._name,
            "params": [param.to_dict() for param in self._params],
            "results": [result.to_dict() for result in self._results],
            "constraints": [constraint.to_dict() for constraint in self._constraints],
        }

    def _validate(self) -> None:
        if not isinstance(self._name, str) or not _IDENTIFIER_RE.match(self._name):
            raise ValueError(f"invalid function name {self._name!r}")
        seen: set[str] = set()
        for param in self._params:
            _validate_spec(param, "parameter")
            if param.name in seen:
                raise ValueError(f"duplicate parameter name {param.name!r}")
            seen.add(param.name)
            for dim in param.shape:
                if not (_IDENTIFIER_RE.match(dim) or _LITERAL_RE.match(dim)):
                    raise ValueError(
                        f"parameter {param.name!r}: dimension {dim!r} must be a name or an "
                        "integer literal"
                    )
        symbols = set(_symbols_in_order(self._params))
        for result in self._results:
            _validate_spec(result, "result")
            for dim in result.shape:
                _check_bound_names(dim, symbols, f"result {result.name!r}")
        for constraint in self._constraints:
            if constraint.kind not in _CONSTRAINT_OPERATORS:
                raise ValueError(f"unknown constraint kind {constraint.kind!r}")
            if constraint.error not in _CONSTRAINT_ERRORS:
                raise ValueError(
                    f"constraint error must be ValueError or IndexError, got {constraint.error!r}"
                )
            for side in (constraint.lhs, constraint.rhs):
                _check_bound_names(side, symbols, "constraint")

    def _unsupported_dtype_message(self) -> str | None:
        for spec in (*self._params, *self._results):
            if spec.dtype == "bf16":
                role = "parameter" if spec in self._params else "result"
                return f"{self._name}(): {role} {spec.name!r} is bf16; {BF16_UNSUPPORTED_MESSAGE}"
        return None

    # -- accessors --

    @property
    def name(self) -> str:
        return self._name

    @property
    def params(self) -> tuple[TensorSpec, ...]:
        return self._params

    @property
    def results(self) -> tuple[TensorSpec, ...]:
        return self._results

    @property
    def constraints(self) -> tuple[Constraint, ...]:
        return self._constraints

    @property
    def symbols(self) -> tuple[str, ...]:
        """Symbolic dimension names, in order of first appearance in the parameters."""
        return self._symbols

    def __str__(self) -> str:
        params = ", ".join(f"{param.name}: {param.type_str()}" for param in self._params)
        if len(self._results) == 1:
            results = self._results[0].type_str()
        else:
            results = f"({', '.join(result.type_str() for result in self._results)})"
        return f"{self._name}({params}) -> {results}"

    def __repr__(self) -> str:
        return f"Signature({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Signature):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[object, ...]:
        return (self._name, self._params, self._results, self._constraints)

    # -- binding --

    def bind(self, args: Sequence[object], kwargs: Mapping[str, object] | None = None) -> BoundCall:
        """Check and convert the arguments of a call; see SPEC section 4.

        Raises ``TypeError`` for a wrong argument count, an unknown or duplicate keyword, an
        unsupported argument type or a dtype that would need a downcast; ``ValueError`` for a
        wrong rank, a static size mismatch, an inconsistent symbolic size or a scalar out of
        range; and the constraint's own error (``ValueError``/``IndexError``) for a failed
        constraint. The caller's arrays are never modified.
        """
        if self._numpy_unsupported is not None:
            raise TypeError(self._numpy_unsupported)
        if kwargs or len(args) != self._arity:
            args = self._arrange(args, kwargs or {})
        dims: dict[str, int] = {}
        try:
            arrays = [check(value, dims) for check, value in zip(self._checkers, args)]
        except _SymbolConflict as conflict:
            raise self._conflict_error(conflict, args) from None
        for check_constraint in self._constraint_checks:
            check_constraint(dims)
        return BoundCall(
            arrays,
            dims,
            [result_shape(dims) for result_shape in self._result_shape_fns],
            list(self._result_dtypes),
        )

    def _arrange(self, args: Sequence[object], kwargs: Mapping[str, object]) -> list[object]:
        """Arguments in parameter order, from positional and keyword arguments."""
        if len(args) > self._arity:
            raise TypeError(self._count_message(len(args) + len(kwargs)))
        missing = object()
        slots: list[object] = [*args, *([missing] * (self._arity - len(args)))]
        for keyword, value in kwargs.items():
            index = self._param_indices.get(keyword)
            if index is None:
                raise TypeError(f"{self._name}() got an unexpected keyword argument {keyword!r}")
            if slots[index] is not missing:
                raise TypeError(f"{self._name}() got multiple values for argument {keyword!r}")
            slots[index] = value
        absent = [param.name for param, value in zip(self._params, slots) if value is missing]
        if not absent:
            return slots
        names = ", ".join(repr(name) for name in absent)
        raise TypeError(f"{self._count_message(len(args) + len(kwargs))} (missing {names})")

    def _count_message(self, given: int) -> str:
        if self._arity == 0:
            takes = "takes no arguments"
        else:
            noun = "argument" if self._arity == 1 else "arguments"
            names = ", ".join(param.name for param in self._params)
            takes = f"takes {self._arity} {noun} ({names})"
        verb = "was" if given == 1 else "were"
        return f"{self._name}() {takes} but {given} {verb} given"

    def _conflict_error(self, conflict: _SymbolConflict, args: Sequence[object]) -> ValueError:
        param = self._params[conflict.param_index]
        origin_index, origin_axis = self._symbol_origins[conflict.symbol]
        origin = self._params[origin_index]
        shapes = f"{param.name!r} has shape {conflict.shape}, declared [{', '.join(param.shape)}]"
        if origin_index != conflict.param_index:
            origin_shape = tuple(np.shape(args[origin_index]))  # type: ignore[arg-type]
            shapes += f"; {origin.name!r} has shape {origin_shape}, "
            shapes += f"declared [{', '.join(origin.shape)}]"
        return ValueError(
            f"{self._name}(): parameter {param.name!r} has {conflict.symbol}={conflict.extent} "
            f"on axis {conflict.axis} but parameter {origin.name!r} bound "
            f"{conflict.symbol}={conflict.bound} on axis {origin_axis} ({shapes})"
        )


# -- helpers for construction ----------------------------------------------------------------


def _validate_spec(spec: TensorSpec, role: str) -> None:
    if not isinstance(spec.name, str) or not _IDENTIFIER_RE.match(spec.name):
        raise ValueError(f"invalid {role} name {spec.name!r}")
    check_dtype_name(spec.dtype)
    for dim in spec.shape:
        if not isinstance(dim, str):
            raise ValueError(f"{role} {spec.name!r}: dimension {dim!r} must be a str")
        compile_dim(dim)


def _check_bound_names(text: str, symbols: set[str], where: str) -> None:
    unbound = compile_dim(text).names - symbols
    if unbound:
        raise ValueError(
            f"{where}: dimension expression {text!r} uses {', '.join(sorted(unbound))}, "
            "not bound by any parameter"
        )


def _symbols_in_order(params: Sequence[TensorSpec]) -> tuple[str, ...]:
    return tuple(_symbol_origins(params))


def _symbol_origins(params: Sequence[TensorSpec]) -> dict[str, tuple[int, int]]:
    """Each symbol -> (index of the first parameter using it, its axis there)."""
    origins: dict[str, tuple[int, int]] = {}
    for index, param in enumerate(params):
        for axis, dim in enumerate(param.shape):
            if _IDENTIFIER_RE.match(dim) and dim not in origins:
                origins[dim] = (index, axis)
    return origins


def _describe_expected(param: TensorSpec) -> str:
    if not param.shape:
        return f"a scalar ({param.dtype})"
    return f"a {param.rank}-d array of shape [{', '.join(param.shape)}]"


def _make_checker(function: str, index: int, param: TensorSpec) -> Checker:
    """A closure that checks and converts one argument for ``param``.

    It returns a C-contiguous aligned native array of exactly the parameter's dtype, binds the
    parameter's symbolic dimensions in ``dims``, and raises for anything unacceptable.
    """
    target = to_numpy_dtype(param.dtype)
    rank = param.rank
    prefix = f"{function}(): parameter {param.name!r}"
    expected = _describe_expected(param)
    declared = f"[{', '.join(param.shape)}]"
    static_axes = tuple(
        (axis, int(dim)) for axis, dim in enumerate(param.shape) if _LITERAL_RE.match(dim)
    )
    symbol_axes = tuple(
        (axis, dim) for axis, dim in enumerate(param.shape) if not _LITERAL_RE.match(dim)
    )
    static_shape = tuple(size for _, size in static_axes) if not symbol_axes else None
    convert_python_scalar = _make_python_scalar_converter(prefix, param.dtype, target)
    ndarray = np.ndarray
    can_cast = np.can_cast

    def coerce(value: object) -> np.ndarray:
        """Any accepted non-ndarray argument -> ndarray (not yet dtype/shape checked)."""
        if isinstance(value, (np.ndarray, np.generic)):
            return np.asarray(value)
        if isinstance(value, (bool, int, float)):
            if rank != 0:
                raise ValueError(
                    f"{prefix} expects {expected}, got a Python {type(value).__name__} (a scalar)"
                )
            return convert_python_scalar(value)
        value_type = type(value)
        if any(hasattr(value, protocol) for protocol in _ARRAY_PROTOCOLS):
            try:
                return np.asarray(value)
            except Exception as error:
                raise TypeError(
                    f"{prefix}: cannot convert {value_type.__name__} to an array: {error}"
                ) from error
        hint = f" (convert it with np.asarray(..., dtype={numpy_spelling(param.dtype)}))"
        raise TypeError(
            f"{prefix} expects {param.type_str()}, got {value_type.__name__}"
            + (hint if isinstance(value, (list, tuple)) else "")
        )

    def dtype_error(dtype: np.dtype) -> TypeError:
        spelling = numpy_spelling(param.dtype)
        if dtype.kind in "iu" and target.kind == "f":
            advice = f"not every {dtype.name} value is exact in {target.name}; pass "
            advice += f"{param.name}.astype({spelling})"
        elif dtype.kind in "biufc":
            advice = f"no silent downcast; pass {param.name}.astype({spelling})"
        else:
            advice = f"pass an array of dtype {spelling}"
        return TypeError(f"{prefix} expects {param.dtype}, got {dtype.name} ({advice})")

    def shape_error(shape: tuple[int, ...], axis: int, size: int) -> ValueError:
        return ValueError(
            f"{prefix} expects size {size} on axis {axis}, got {shape[axis]} "
            f"(expected shape {declared}, got shape {shape})"
        )

    def check(value: Any, dims: dict[str, int]) -> np.ndarray:
        if type(value) is not ndarray:
            value = coerce(value)
        dtype = value.dtype
        needs_cast = dtype is not target and dtype != target
        if needs_cast and not can_cast(dtype, target, "safe"):
            raise dtype_error(dtype)
        shape = value.shape
        if shape != static_shape:
            if len(shape) != rank:
                raise ValueError(f"{prefix} expects {expected}, got shape {shape}")
            for axis, size in static_axes:
                if shape[axis] != size:
                    raise shape_error(shape, axis, size)
            for axis, symbol in symbol_axes:
                extent = shape[axis]
                bound = dims.setdefault(symbol, extent)
                if bound != extent:
                    raise _SymbolConflict(index, symbol, axis, extent, bound, shape)
        if needs_cast:
            return value.astype(target, order="C")
        flags = value.flags
        if flags.c_contiguous and flags.aligned:
            return value
        return np.array(value, order="C")

    return check


def _make_python_scalar_converter(
    prefix: str, dtype_name: str, target: np.dtype
) -> Callable[[bool | int | float], np.ndarray]:
    """A closure converting a Python bool/int/float to a 0-d array of ``target``.

    bool is accepted for every dtype (it casts safely); int for integer and float dtypes,
    checked against the dtype's range; float only for float dtypes (a finite float that
    overflows the dtype is rejected).
    """
    is_float_param = dtype_name in FLOAT_DTYPES
    is_int_param = dtype_name in INT_DTYPES
    low, high = int_range(dtype_name) if is_int_param else (0, 0)
    float_max = float(np.finfo(target).max) if is_float_param else 0.0

    def float_value(value: int | float) -> np.ndarray:
        try:
            as_float = float(value)
        except OverflowError:
            raise ValueError(
                f"{prefix} expects {dtype_name}, got {_describe_number(value)}, "
                f"out of range for {dtype_name}"
            ) from None
        if abs(as_float) <= float_max or not math.isfinite(as_float):
            return np.array(as_float, dtype=target)
        with np.errstate(over="ignore"):
            converted = np.array(as_float, dtype=target)
        if np.isinf(converted):
            raise ValueError(
                f"{prefix} expects {dtype_name}, got {_describe_number(value)}, "
                f"out of range for {dtype_name}"
            )
        return converted

    def convert(value: bool | int | float) -> np.ndarray:
        if isinstance(value, bool):
            return np.array(value, dtype=target)
        if isinstance(value, int):
            if is_int_param:
                if not low <= value <= high:
                    raise ValueError(
                        f"{prefix} expects {dtype_name}, got {_describe_number(value)}, "
                        f"out of range [{low}, {high}]"
                    )
                return np.array(value, dtype=target)
            if is_float_param:
                return float_value(value)
            raise TypeError(f"{prefix} expects {dtype_name}, got int")
        if is_float_param:
            return float_value(value)
        raise TypeError(f"{prefix} expects {dtype_name}, got float (no silent downcast)")

    return convert


def _describe_number(value: int | float) -> str:
    """``repr`` of a number, except an int too long to print usefully."""
    if isinstance(value, int) and value.bit_length() > 128:
        return f"an int of {value.bit_length()} bits"
    return repr(value)


def _make_result_shape(result: TensorSpec) -> Callable[[Mapping[str, int]], tuple[int, ...]]:
    """A closure computing a result's shape (each extent clamped at 0) from the dims env.

    Plain names are looked up directly (a bound extent is never negative) and constants are
    folded, so the common shapes cost a dict lookup per axis.
    """
    compiled = [compile_dim(dim) for dim in result.shape]
    if all(dim.constant is not None for dim in compiled):
        static_shape = tuple(max(0, dim.constant or 0) for dim in compiled)
        return lambda dims: static_shape
    if all(_IDENTIFIER_RE.match(dim) for dim in result.shape):
        if len(result.shape) == 1:
            (only_name,) = result.shape
            return lambda dims: (dims[only_name],)
        return operator.itemgetter(*result.shape)
    axis_fns = [_make_extent(dim) for dim in compiled]
    return lambda dims: tuple([extent(dims) for extent in axis_fns])


def _make_extent(dim: CompiledDim) -> Callable[[Mapping[str, int]], int]:
    if dim.constant is not None:
        constant = max(0, dim.constant)
        return lambda dims: constant
    if _IDENTIFIER_RE.match(dim.text):
        return operator.itemgetter(dim.text)
    evaluate = dim.evaluate
    return lambda dims: max(0, evaluate(dims))


def _make_constraint_check(
    constraint: Constraint, symbols: Sequence[str]
) -> Callable[[Mapping[str, int]], None]:
    """A closure raising the constraint's error (with the values involved) when it fails."""
    compare, _ = _CONSTRAINT_OPERATORS[constraint.kind]
    error_class = _CONSTRAINT_ERRORS[constraint.error]
    lhs = compile_dim(constraint.lhs).evaluate
    rhs = compile_dim(constraint.rhs).evaluate
    involved = compile_dim(constraint.lhs).names | compile_dim(constraint.rhs).names
    names = [symbol for symbol in symbols if symbol in involved]

    def check(dims: Mapping[str, int]) -> None:
        if compare(lhs(dims), rhs(dims)):
            return
        message = constraint.message or _default_constraint_message(constraint)
        if names:
            values = ", ".join(f"{name}={dims[name]}" for name in names)
            message = f"{message} ({values})"
        raise error_class(message)

    return check


def _default_constraint_message(constraint: Constraint) -> str:
    _, spelling = _CONSTRAINT_OPERATORS[constraint.kind]
    return f"constraint {constraint.lhs} {spelling} {constraint.rhs} does not hold"

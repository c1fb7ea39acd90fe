"""Interpreter kernels, structural: shapes, gathers, reductions, matmul and the neural-net
ops (helpers and method: tests/interp_kernel_support.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from interp_kernel_support import (
    ALL_DTYPES,
    BOOL,
    F16,
    F32,
    F64,
    FLOATS,
    I32,
    I64,
    INF,
    INTS,
    NAN,
    NUMERIC,
    Shape,
    assert_close,
    expect,
    from_values,
    full_range,
    run,
    sample,
    wrap,
)

# ------------------------------------------------------------------------ shape

# fmt: off
BROADCASTS = [((), (2, 3)), ((1,), (4,)), ((3,), (2, 3)), ((2, 1), (2, 4)), ((1, 3), (0, 3)),
              ((2, 1), (3, 2, 5)), ((), ())]
RESHAPES = [((2, 3), (3, 2)), ((6,), (1, 2, 3)), ((), (1, 1)), ((1,), ()), ((0, 3), (3, 0, 1))]
TRANSPOSES = [((2, 3), [1, 0]), ((2, 3, 4), [2, 0, 1]), ((), []), ((0, 2, 1), [1, 2, 0])]
SLICES = [((7,), [1], [5], [2]), ((7,), [-3], [None], [1]), ((7,), [None], [-1], [3]),
          ((7,), [-100], [100], [1]), ((7,), [5], [2], [1]), ((7,), [None], [None], [-2]),
          ((0,), [0], [3], [1]), ((3, 4), [1, None], [None, -1], [1, 2]),
          ((3, 4), [10, 0], [20, 4], [1, 1])]
# fmt: on


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize(("source", "target"), BROADCASTS)
def test_broadcast_to(dtype: np.dtype, source: Shape, target: Shape) -> None:
    x = sample(dtype, source)
    result = run("tc.broadcast_to", x, dtype=dtype, shape=target)
    assert result.flags.c_contiguous and result.flags.writeable
    offset = len(target) - len(source)
    for index in np.ndindex(*target):
        source_index = tuple(0 if extent == 1 else i for i, extent in zip(index[offset:], source))
        assert result[index] == x[source_index]


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize(("source", "target"), RESHAPES)
def test_reshape(dtype: np.dtype, source: Shape, target: Shape) -> None:
    x = sample(dtype, source)
    result = run("tc.reshape", x, dtype=dtype, shape=target)
    assert result.flags.c_contiguous and result.ravel().tolist() == x.ravel().tolist()


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize(("shape", "perm"), TRANSPOSES)
def test_transpose(dtype: np.dtype, shape: Shape, perm: list[int]) -> None:
    x = sample(dtype, shape)
    result_shape = tuple(shape[axis] for axis in perm)
    result = run("tc.transpose", x, dtype=dtype, shape=result_shape, perm=perm)
    assert result.flags.c_contiguous
    for index in np.ndindex(*shape):
        assert result[tuple(index[axis] for axis in perm)] == x[index]


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize(("shape", "starts", "stops", "steps"), SLICES)
def test_slice_follows_python(dtype: np.dtype, shape: Shape, starts, stops, steps) -> None:
    x = sample(dtype, shape)
    rows = x.tolist()[slice(starts[0], stops[0], steps[0])]
    if len(shape) == 2:
        rows = [row[slice(starts[1], stops[1], steps[1])] for row in rows]
    kept = [range(n)[slice(*bounds)] for n, *bounds in zip(shape, starts, stops, steps)]
    expected = from_values(rows, tuple(len(indices) for indices in kept), dtype)
    expect("tc.slice", x, dtype=dtype, expected=expected, starts=starts, stops=stops, steps=steps)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_concat(dtype: np.dtype) -> None:
    a, b, row = sample(dtype, (2, 3), seed=1), sample(dtype, (2, 1), seed=2), sample(dtype, (1, 3))
    columns = [ra + rb for ra, rb in zip(a.tolist(), b.tolist())]
    expect("tc.concat", a, sample(dtype, (2, 0)), b, dtype=dtype, expected=columns, axis=1)
    expect("tc.concat", a, a[:0], row, dtype=dtype, expected=a.tolist() + row.tolist(), axis=0)
    expect("tc.concat", a[0], dtype=dtype, expected=a[0], axis=0)


# ---------------------------------------------------------------------- gathers

# fmt: off
TAKES = [((5,), (3,), 0), ((5,), (), 0), ((4, 5), (2, 3), 1), ((4, 5, 2), (6,), 1),
         ((4, 3), (0,), 0), ((0, 3), (2,), 1), ((5,), (2, 2), 0)]
TAKES_ALONG = [((4, 5), (4, 3), 1), ((4, 5), (2, 5), 0), ((4, 5), (1, 2), 1),
               ((1, 5), (3, 2), 1), ((3, 4, 2), (3, 0, 2), 1), ((6,), (4,), 0)]
SCATTERS = [((5,), (7,), 0), ((4, 5), (2, 3), 1), ((3, 4, 2), (), 1), ((4, 3), (0,), 0),
            ((6, 2), (3, 1), 0)]
SCATTERS_ALONG = [((4, 5), (4, 7), 1), ((4, 5), (2, 5), 0), ((4, 5), (1, 3), 1),
                  ((3, 2, 4), (3, 2, 0), 2)]
# fmt: on


def _indices(dtype: np.dtype, shape: Shape, size: int, seed: int = 7) -> np.ndarray:
    """Random valid indices in ``[-size, size)`` (zeros, never used, when ``size`` is 0)."""
    return sample(dtype, shape, -size, size - 1, seed) if size else np.zeros(shape, dtype)


@pytest.mark.parametrize("index_dtype", INTS)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize(("shape", "index_shape", "axis"), TAKES)
def test_take(
    dtype: np.dtype, index_dtype: np.dtype, shape: Shape, index_shape: Shape, axis: int
) -> None:
    x, size = sample(dtype, shape), shape[axis]
    idx = _indices(index_dtype, index_shape, size)
    result_shape = shape[:axis] + index_shape + shape[axis + 1 :]
    result = run("tc.take", x, idx, dtype=dtype, shape=result_shape, axis=axis)
    for index in np.ndindex(*result_shape):
        position = int(idx[index[axis : axis + len(index_shape)]]) % size
        assert result[index] == x[index[:axis] + (position,) + index[axis + len(index_shape) :]]


def test_take_out_of_range_raises() -> None:
    x = np.arange(5.0)
    with pytest.raises(IndexError, match=r"^take: index 7 is out of range for axis 0 with size 5$"):
        run("tc.take", x, np.array([1, 7, 9]), dtype=F64, shape=(3,), axis=0)
    with pytest.raises(
        IndexError, match=r"^take: index -6 is out of range for axis 1 with size 5$"
    ):
        run("tc.take", x.reshape(1, 5), np.array(-6), dtype=F64, shape=(1,), axis=1)
    with pytest.raises(IndexError, match="size 0$"):
        run("tc.take", np.zeros((0, 2)), np.array([0]), dtype=F64, shape=(1, 2), axis=0)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize(("shape", "index_shape", "axis"), TAKES_ALONG)
def test_take_along_axis(dtype: np.dtype, shape: Shape, index_shape: Shape, axis: int) -> None:
    x, size, rank = sample(dtype, shape), shape[axis], len(shape)
    idx = _indices(I64, index_shape, size)
    result_shape = tuple(
        index_shape[d] if d == axis else max(shape[d], index_shape[d]) for d in range(rank)
    )
    result = run("tc.take_along_axis", x, idx, dtype=dtype, shape=result_shape, axis=axis)
    for index in np.ndindex(*result_shape):
        index_position = tuple(0 if index_shape[d] == 1 else index[d] for d in range(rank))
        source = [0 if shape[d] == 1 else index[d] for d in range(rank)]
        source[axis] = int(idx[index_position]) % size
        assert result[index] == x[tuple(source)]


def test_take_along_axis_out_of_range_raises() -> None:
    message = r"^take_along_axis: index 3 is out of range for axis 1 with size 3$"
    with pytest.raises(IndexError, match=message):
        run(
            "tc.take_along_axis",
            np.zeros((2, 3)),
            np.array([[0], [3]]),
            dtype=F64,
            shape=(2, 1),
            axis=1,
        )


@pytest.mark.parametrize("index_dtype", INTS)
@pytest.mark.parametrize(
    ("index_shape", "n"), [((), 4), ((5,), 3), ((2, 3), 4), ((0,), 3), ((2,), 0)]
)
def test_one_hot(index_dtype: np.dtype, index_shape: Shape, n: int) -> None:
    idx = sample(index_dtype, index_shape, -2, n + 1, seed=2)
    result = run("tc.one_hot", idx, dtype=F32, shape=index_shape + (n,), n=n)
    for index in np.ndindex(*index_shape):
        assert result[index].tolist() == [1.0 if int(idx[index]) == k else 0.0 for k in range(n)]


def test_one_hot_out_of_range_is_zero_row() -> None:
    expected = [[0, 0, 0], [0, 0, 0], [0, 1, 0], [0, 0, 0]]
    expect("tc.one_hot", np.array([-1, 3, 1, 100]), dtype=F32, expected=expected, n=3)


def _inner(a: np.ndarray, b: np.ndarray) -> float:
    return math.fsum((a.astype(np.float64) * b.astype(np.float64)).ravel().tolist())


def _assert_adjoint(
    x: np.ndarray, taken: np.ndarray, updates: np.ndarray, scattered: np.ndarray, dtype: np.dtype
) -> None:
    """<take(x, i), u> == <x, scatter_add(u, i)>: the scatter is the gather's transpose."""
    assert _inner(taken, updates) == pytest.approx(
        _inner(x, scattered), rel=1e-2 if dtype == F16 else 1e-5
    )


@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize(("shape", "index_shape", "axis"), SCATTERS)
def test_scatter_add_is_transpose_of_take(
    dtype: np.dtype, shape: Shape, index_shape: Shape, axis: int
) -> None:
    size = shape[axis]
    x, idx = sample(dtype, shape, seed=1), _indices(I32, index_shape, size)
    taken_shape = shape[:axis] + index_shape + shape[axis + 1 :]
    updates = sample(dtype, taken_shape, seed=3)
    taken = run("tc.take", x, idx, dtype=dtype, shape=taken_shape, axis=axis)
    scattered = run("tc.scatter_add", updates, idx, dtype=dtype, shape=shape, axis=axis, size=size)
    _assert_adjoint(x, taken, updates, scattered, dtype)
    expected = np.zeros(shape, dtype=np.float64)  # explicit accumulation loop
    for index in np.ndindex(*taken_shape):
        position = int(idx[index[axis : axis + len(index_shape)]]) % size
        expected[index[:axis] + (position,) + index[axis + len(index_shape) :]] += updates[
            index
        ].item()
    assert_close(scattered, expected.astype(dtype))


@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize(("shape", "index_shape", "axis"), SCATTERS_ALONG)
def test_scatter_add_along_axis_is_transpose(
    dtype: np.dtype, shape: Shape, index_shape: Shape, axis: int
) -> None:
    size = shape[axis]
    x, idx = sample(dtype, shape, seed=1), _indices(I64, index_shape, size)
    taken_shape = tuple(index_shape[d] if d == axis else shape[d] for d in range(len(shape)))
    updates = sample(dtype, taken_shape, seed=3)
    taken = run("tc.take_along_axis", x, idx, dtype=dtype, shape=taken_shape, axis=axis)
    attrs = {"axis": axis, "size": size}
    scattered = run("tc.scatter_add_along_axis", updates, idx, dtype=dtype, shape=shape, **attrs)
    _assert_adjoint(x, taken, updates, scattered, dtype)


def test_scatter_add_duplicates_and_broadcast_operand() -> None:
    updates, idx = np.array([1, 2, 3, 4], np.int32), np.array([0, -1, 0, 2])
    expect("tc.scatter_add", updates, idx, dtype=I32, expected=[4, 0, 6], axis=0, size=3)
    # take_along_axis of a (1, 3) operand broadcast to 2 rows: the transpose sums the rows.
    idx = np.array([[0, 2], [2, 2]])
    expect(
        "tc.scatter_add_along_axis",
        np.ones((2, 2)),
        idx,
        dtype=F64,
        expected=[[1, 0, 3]],
        axis=1,
        size=3,
    )
    with pytest.raises(IndexError, match="scatter_add: index 3 is out of range"):
        run("tc.scatter_add", np.ones(2), np.array([0, 3]), dtype=F64, shape=(3,), axis=0, size=3)


# ------------------------------------------------------------------- reductions


def reduced_shape(shape: Sequence[int], axes: Sequence[int], keepdims: bool) -> Shape:
    if keepdims:
        return tuple(1 if d in axes else extent for d, extent in enumerate(shape))
    return tuple(extent for d, extent in enumerate(shape) if d not in axes)


def reduce_reference(
    x: np.ndarray,
    axes: Sequence[int],
    keepdims: bool,
    combine: Callable[[list], object],
    dtype: np.dtype,
) -> np.ndarray:
    """Apply ``combine`` to the Python values of every reduced slice (in C order)."""
    kept = [d for d in range(x.ndim) if d not in axes]
    values = []
    for kept_index in np.ndindex(*[x.shape[d] for d in kept]):
        items = []
        for reduced_index in np.ndindex(*[x.shape[d] for d in axes]):
            full = dict(zip(kept, kept_index)) | dict(zip(axes, reduced_index))
            items.append(x[tuple(full[d] for d in range(x.ndim))].item())
        values.append(combine(items))
    return from_values(values, reduced_shape(x.shape, axes, keepdims), dtype)


def _extreme_combine(dtype: np.dtype, pick: Callable) -> Callable[[list], object]:
    """``pick`` (max or min) of the items, NaN if any is NaN, the identity if there are none."""
    if dtype == BOOL:
        identity = pick is min
    elif dtype.kind == "f":
        identity = INF if pick is min else -INF
    else:
        identity = int(np.iinfo(dtype).max if pick is min else np.iinfo(dtype).min)
    return lambda items: NAN if any(v != v for v in items) else pick(items, default=identity)


def _combine(op: str, dtype: np.dtype, result_dtype: np.dtype) -> Callable[[list], object]:
    if op in ("tc.max", "tc.min"):
        return _extreme_combine(dtype, max if op == "tc.max" else min)
    if op == "tc.mean":
        return lambda items: math.fsum(items) / len(items) if items else NAN
    if result_dtype.kind == "f":
        return math.fsum if op == "tc.sum" else math.prod
    total = sum if op == "tc.sum" else math.prod
    return lambda items: wrap(total(int(v) for v in items), result_dtype)


# fmt: off
REDUCTION_CASES = [((2, 3, 4), []), ((2, 3, 4), [0]), ((2, 3, 4), [1]), ((2, 3, 4), [2]),
                   ((2, 3, 4), [0, 2]), ((2, 3, 4), [0, 1, 2]), ((2, 0, 3), [1]),
                   ((2, 0, 3), [0, 2]), ((), []), ((5,), [0]), ((0,), [0]), ((1, 4, 1), [0, 2])]
ARG_CASES = [((2, 3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), 2), ((2, 3, 4), None), ((), None),
             ((5,), 0), ((2, 0, 3), 1), ((2, 0, 3), 0), ((2, 0, 3), None), ((1,), None)]
# fmt: on
SUM_RESULT = {BOOL: I32, I32: I32, I64: I64, F16: F16, F32: F32, F64: F64}
MEAN_RESULT = {BOOL: F32, I32: F32, I64: F32, F16: F16, F32: F32, F64: F64}


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize(("shape", "axes"), REDUCTION_CASES)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("op", ["tc.sum", "tc.prod", "tc.max", "tc.min", "tc.mean"])
def test_reductions(
    op: str, dtype: np.dtype, shape: Shape, axes: list[int], keepdims: bool
) -> None:
    result_dtype = {"tc.sum": SUM_RESULT, "tc.prod": SUM_RESULT, "tc.mean": MEAN_RESULT}.get(op, {})
    result_dtype = result_dtype.get(dtype, dtype)
    wide = dtype.kind == "i" and op != "tc.mean"  # sums and products that wrap
    x = full_range(dtype, shape) if wide else sample(dtype, shape, -1.5, 1.5)
    if axes:
        expected = reduce_reference(
            x, axes, keepdims, _combine(op, dtype, result_dtype), result_dtype
        )
    else:
        expected = x.astype(result_dtype)
    result_shape = reduced_shape(shape, axes, keepdims)
    actual = run(op, x, dtype=result_dtype, shape=result_shape, axes=axes, keepdims=keepdims)
    assert_close(actual, expected)


@pytest.mark.parametrize("dtype", FLOATS)
def test_reductions_of_special_values(dtype: np.dtype) -> None:
    x = np.array([[1.0, NAN, 2.0], [-INF, 0.0, INF]], dtype=dtype)
    for op, expected in [
        ("tc.max", [NAN, INF]),
        ("tc.min", [NAN, -INF]),
        ("tc.sum", [NAN, NAN]),
        ("tc.mean", [NAN, NAN]),
    ]:
        expect(op, x, dtype=dtype, expected=expected, axes=[1], keepdims=False)
    empty = np.zeros((2, 0), dtype=dtype)
    for op, value in [
        ("tc.sum", 0),
        ("tc.prod", 1),
        ("tc.max", -INF),
        ("tc.min", INF),
        ("tc.mean", NAN),
    ]:
        expect(op, empty, dtype=dtype, expected=[[value]] * 2, axes=[1], keepdims=True)


def test_empty_integer_and_bool_reductions() -> None:
    empty = np.zeros((0, 2), dtype=I32)
    attrs = {"axes": [0], "keepdims": False}
    expect("tc.max", empty, dtype=I32, expected=[np.iinfo(I32).min] * 2, **attrs)
    expect("tc.min", empty.astype(I64), dtype=I64, expected=[np.iinfo(I64).max] * 2, **attrs)
    expect("tc.mean", empty, dtype=F32, expected=[NAN] * 2, **attrs)
    expect("tc.prod", empty, dtype=I32, expected=[1, 1], **attrs)
    attrs = {"axes": [0, 1], "keepdims": False}
    expect("tc.max", empty.astype(bool), dtype=BOOL, expected=False, **attrs)
    expect("tc.min", empty.astype(bool), dtype=BOOL, expected=True, **attrs)
    expect("tc.sum", empty.astype(bool), dtype=I32, expected=0, **attrs)


def test_int32_sum_wraps_and_mean_is_float64_rounded() -> None:
    x = np.full((3,), np.iinfo(np.int32).max, dtype=I32)
    attrs = {"axes": [0], "keepdims": False}
    expect("tc.sum", x, dtype=I32, expected=wrap(3 * (2**31 - 1), I32), **attrs)
    expect("tc.mean", x, dtype=F32, expected=2**31 - 1, **attrs)
    expect("tc.sum", np.ones(5, bool), dtype=I32, expected=5, **attrs)


def _arg_reference(items: list, pick_max: bool) -> int:
    best = 0
    for position, value in enumerate(items):
        if value != value:  # NaN is the extreme; the first one wins
            return position
        if (value > items[best]) if pick_max else (value < items[best]):
            best = position
    return best


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize(("shape", "axis"), ARG_CASES)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("op", ["tc.argmax", "tc.argmin"])
def test_argmax_argmin(
    op: str, dtype: np.dtype, shape: Shape, axis: int | None, keepdims: bool
) -> None:
    x = sample(dtype, shape, -2, 2)
    if dtype.kind == "f":
        x = np.round(x)  # ties: the first occurrence wins
        if x.size > 3:
            x.flat[3] = NAN
    axes = list(range(len(shape))) if axis is None else [axis]
    result_shape = reduced_shape(shape, axes, keepdims)
    pick_max = op == "tc.argmax"
    if axis is None:
        expected = np.full(result_shape, _arg_reference(x.ravel().tolist(), pick_max), dtype=I32)
    else:
        expected = reduce_reference(x, axes, keepdims, lambda v: _arg_reference(v, pick_max), I32)
    expect(op, x, dtype=I32, expected=expected, axis=axis, keepdims=keepdims)


# ----------------------------------------------------------------------- matmul

# fmt: off
MATMULS = [((2, 3), (3, 4)), ((2, 0), (0, 3)), ((0, 3), (3, 2)), ((2, 2, 3), (2, 3, 1)),
           ((1, 1), (1, 1)), ((3, 2, 4, 5), (3, 2, 5, 2))]
# fmt: on


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize(("lhs_shape", "rhs_shape"), MATMULS)
def test_matmul(dtype: np.dtype, lhs_shape: Shape, rhs_shape: Shape) -> None:
    if dtype.kind == "i":
        lhs, rhs = full_range(dtype, lhs_shape, 1), full_range(dtype, rhs_shape, 2)
    else:
        lhs, rhs = sample(dtype, lhs_shape, seed=1), sample(dtype, rhs_shape, seed=2)
    *batch, rows, inner = lhs_shape
    values = []
    for *b, i, j in np.ndindex(*batch, rows, rhs_shape[-1]):
        pairs = [(lhs[(*b, i, k)].item(), rhs[(*b, k, j)].item()) for k in range(inner)]
        if dtype == BOOL:
            values.append(any(p and q for p, q in pairs))
        elif dtype.kind == "i":
            values.append(wrap(sum(p * q for p, q in pairs), dtype))
        else:
            values.append(math.fsum(p * q for p, q in pairs))
    expected = from_values(values, (*batch, rows, rhs_shape[-1]), dtype)
    assert_close(run("tc.matmul", lhs, rhs, dtype=dtype, shape=expected.shape), expected)


# ------------------------------------------------------------------ neural nets


def _softmax_row(items: list) -> list:
    exponentials = [math.exp(v - max(items)) for v in items]
    return [e / math.fsum(exponentials) for e in exponentials]


def _log_softmax_row(items: list) -> list:
    largest = max(items)
    normaliser = math.log(math.fsum(math.exp(v - largest) for v in items))
    return [v - largest - normaliser for v in items]


def _along_axis(x: np.ndarray, axis: int, row_function: Callable[[list], list]) -> np.ndarray:
    if x.size == 0:
        return x.copy()
    moved = np.moveaxis(x, axis, -1)
    rows = [row_function(row.tolist()) for row in moved.reshape(-1, moved.shape[-1])]
    result = np.array(rows, dtype=np.float64).reshape(moved.shape)
    return np.moveaxis(result, -1, axis).astype(x.dtype)


SOFTMAX_CASES = [
    ((3, 4), 1),
    ((3, 4), 0),
    ((2, 3, 4), 1),
    ((5,), 0),
    ((2, 0), 1),
    ((2, 0), 0),
    ((3, 1), 1),
]
SOFTMAX_OPS = [("tc.softmax", _softmax_row), ("tc.log_softmax", _log_softmax_row)]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(("shape", "axis"), SOFTMAX_CASES)
@pytest.mark.parametrize(("op", "row_function"), SOFTMAX_OPS)
def test_softmax_and_log_softmax(
    op: str, row_function: Callable, dtype: np.dtype, shape: Shape, axis: int
) -> None:
    x = sample(dtype, shape, -5, 5)
    assert_close(
        run(op, x, dtype=dtype, shape=shape, axis=axis), _along_axis(x, axis, row_function)
    )


@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_extremes(dtype: np.dtype) -> None:
    big = float(np.finfo(dtype).max)
    x = np.array([[-INF, -INF, -INF], [big, big, -big], [-INF, 0.0, -INF]], dtype=dtype)
    expect("tc.softmax", x, dtype=dtype, expected=[[NAN] * 3, [0.5, 0.5, 0.0], [0, 1, 0]], axis=1)
    expected = [[NAN] * 3, [-math.log(2), -math.log(2), -INF], [-INF, 0, -INF]]
    actual = run("tc.log_softmax", x, dtype=dtype, shape=x.shape, axis=1)
    assert_close(actual, from_values(expected, x.shape, dtype))


def _logsumexp_combine(items: list) -> float:
    largest = max(items, default=-INF)
    if math.isinf(largest) or math.isnan(largest):
        return largest
    return largest + math.log(math.fsum(math.exp(v - largest) for v in items))


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize(("shape", "axes"), REDUCTION_CASES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_logsumexp(dtype: np.dtype, shape: Shape, axes: list[int], keepdims: bool) -> None:
    x = sample(dtype, shape, -5, 5)
    expected = reduce_reference(x, axes, keepdims, _logsumexp_combine, dtype) if axes else x.copy()
    actual = run("tc.logsumexp", x, dtype=dtype, shape=expected.shape, axes=axes, keepdims=keepdims)
    assert_close(actual, expected)


@pytest.mark.parametrize("dtype", FLOATS)
def test_logsumexp_extremes(dtype: np.dtype) -> None:
    big = float(np.finfo(dtype).max)
    rows = [[-INF, -INF], [INF, 1.0], [INF, -INF], [big, big], [-big, -big], [NAN, 1.0], [1.0, NAN]]
    x = np.array(rows, dtype=dtype)
    expected = [-INF, INF, INF, big, -big + math.log(2), NAN, NAN]  # big + log 2 rounds to big
    expect("tc.logsumexp", x, dtype=dtype, expected=expected, axes=[1], keepdims=False)


def _layer_norm_row(items: list, gamma: list, beta: list, eps: float) -> list:
    mean = math.fsum(items) / len(items)
    variance = math.fsum((v - mean) ** 2 for v in items) / len(items)
    return [(v - mean) / math.sqrt(variance + eps) * g + b for v, g, b in zip(items, gamma, beta)]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 5), (4,), (2, 0), (0, 4), (3, 1)])
def test_layer_norm(dtype: np.dtype, shape: Shape) -> None:
    x = sample(dtype, shape, -3, 3, 1)
    gamma, beta = sample(dtype, shape[-1:], 0.5, 2, 2), sample(dtype, shape[-1:], -1, 1, 3)
    rows = x.reshape(-1, shape[-1]).tolist() if x.size else []
    values = [_layer_norm_row(row, gamma.tolist(), beta.tolist(), 1e-5) for row in rows]
    actual = run("tc.layer_norm", x, gamma, beta, dtype=dtype, shape=shape, eps=1e-5)
    assert_close(actual, from_values(values, shape, dtype))


@pytest.mark.parametrize("label_dtype", INTS)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(("rows", "classes"), [(4, 5), (1, 1), (0, 3), (0, 0)])
def test_cross_entropy(dtype: np.dtype, label_dtype: np.dtype, rows: int, classes: int) -> None:
    logits = sample(dtype, (rows, classes), -5, 5, 1)
    labels = sample(label_dtype, (rows,), 0, max(classes - 1, 0), 2)
    pairs = zip(logits.tolist(), labels.tolist())
    expected = from_values(
        [_logsumexp_combine(row) - row[label] for row, label in pairs], (rows,), dtype
    )
    assert_close(run("tc.cross_entropy", logits, labels, dtype=dtype, shape=(rows,)), expected)


def test_cross_entropy_is_stable_and_checks_labels() -> None:
    logits = np.array([[1e4, 0.0], [-1e4, 1e4]], dtype=F32)
    expect("tc.cross_entropy", logits, np.array([1, 1]), dtype=F32, expected=[1e4, 0.0])
    message = r"^cross_entropy: label 12 is out of range for 10 classes$"
    with pytest.raises(IndexError, match=message):
        run(
            "tc.cross_entropy",
            np.zeros((3, 10), F32),
            np.array([0, 12, 11], np.int32),
            dtype=F32,
            shape=(3,),
        )
    with pytest.raises(
        IndexError, match=r"^cross_entropy: label -1 is out of range for 10 classes$"
    ):
        run("tc.cross_entropy", np.zeros((1, 10), F32), np.array([-1]), dtype=F32, shape=(1,))



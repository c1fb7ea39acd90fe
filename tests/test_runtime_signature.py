"""Tests for tensorc_runtime: dimension expressions, signatures and argument binding."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import timeit
from pathlib import Path

import numpy as np
import pytest

RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtime"
try:
    import tensorc_runtime
except ImportError:  # not installed: use the source tree
    sys.path.insert(0, str(RUNTIME_DIR))
    import tensorc_runtime

from tensorc_runtime import (  # noqa: E402
    FORMAT_VERSION,
    ArtifactError,
    BoundCall,
    Signature,
    eval_dim,
)
from tensorc_runtime.dims import compile_dim, dim_names, eval_extent  # noqa: E402
from tensorc_runtime.dtypes import (  # noqa: E402
    FLOAT_DTYPES,
    INT_DTYPES,
    from_numpy_dtype,
    int_range,
    to_numpy_dtype,
)

MLP = {
    "name": "mlp",
    "params": [
        {"name": "x", "dtype": "f32", "shape": ["N", "784"]},
        {"name": "w1", "dtype": "f32", "shape": ["784", "H"]},
        {"name": "b1", "dtype": "f32", "shape": ["H"]},
        {"name": "w2", "dtype": "f32", "shape": ["H", "10"]},
        {"name": "b2", "dtype": "f32", "shape": ["10"]},
    ],
    "results": [{"name": "result0", "dtype": "f32", "shape": ["N", "10"]}],
    "constraints": [],
}


def make_signature(params: list[tuple[str, str, list[str]]], results=None, constraints=None):
    """A signature named ``f`` from (name, dtype, shape) triples."""
    return Signature.from_dict(
        {
            "name": "f",
            "params": [{"name": n, "dtype": d, "shape": s} for n, d, s in params],
            "results": [
                {"name": f"result{i}", "dtype": d, "shape": s}
                for i, (d, s) in enumerate(results or [])
            ],
            "constraints": constraints or [],
        }
    )


def mlp_args(n: int = 3, hidden: int = 16) -> list[np.ndarray]:
    return [
        np.zeros((n, 784), np.float32),
        np.zeros((784, hidden), np.float32),
        np.zeros(hidden, np.float32),
        np.zeros((hidden, 10), np.float32),
        np.zeros(10, np.float32),
    ]


# -- package ---------------------------------------------------------------------------------


def test_package_metadata() -> None:
    assert tensorc_runtime.__version__ == "0.1.0"
    assert FORMAT_VERSION == 3
    assert issubclass(ArtifactError, Exception)


def test_runtime_imports_nothing_from_the_compiler() -> None:
    code = (
        "import sys, tensorc_runtime, tensorc_runtime.signature, tensorc_runtime.dims\n"
        "bad = sorted(m for m in sys.modules if m == 'tensorc' or m.startswith('tensorc.')\n"
        "             or m.split('.')[0] in ('lark', 'llvmlite'))\n"
        "print(bad)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(RUNTIME_DIR)}
    completed = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=RUNTIME_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    assert completed.stdout.strip() == "[]"


# -- dtypes ----------------------------------------------------------------------------------


def test_dtype_names() -> None:
    assert to_numpy_dtype("f32") == np.float32
    assert to_numpy_dtype("bool") == np.bool_
    assert from_numpy_dtype(np.dtype(">i8")) == "i64"
    assert FLOAT_DTYPES == {"f16", "bf16", "f32", "f64"}
    assert INT_DTYPES == {"i32", "i64"}
    assert int_range("i32") == (-(2**31), 2**31 - 1)
    with pytest.raises(TypeError, match="bf16 has no NumPy dtype"):
        to_numpy_dtype("bf16")
    with pytest.raises(ValueError, match="unknown dtype 'f8'"):
        to_numpy_dtype("f8")
    with pytest.raises(ValueError, match="no tensorc equivalent"):
        from_numpy_dtype(np.complex64)


# -- dimension expressions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("N", 7),
        ("784", 784),
        ("N - 1", 6),
        ("2*N", 14),
        ("N*K + 3", 24),
        ("N + K*3", 16),  # * binds tighter than +
        ("(N + K) * 3", 30),
        ("N - K - 1", 3),  # left-associative
        ("(N + 1) // 2", 4),
        ("N // 2 * 2", 6),  # // and * share a level, left to right
        ("-N // 2", -4),  # floor division of a negative, like Python
        ("(1 - N) // 2", -3),
        ("-(N // 2)", -3),
        ("N % 4", 3),
        ("-N % 4", 1),
        ("min(N, 3)", 3),
        ("max(N - 10, 0)", 0),
        ("max(N, K, 5)", 7),
        ("min(max(N, 2), K)", 3),
        ("-N", -7),
        ("--N", 7),
        ("+N", 7),
        ("  N  -  K  ", 4),
    ],
)
def test_eval_dim(text: str, expected: int) -> None:
    assert eval_dim(text, {"N": 7, "K": 3}) == expected


def test_eval_dim_matches_python_floor_division() -> None:
    for n in range(-7, 8):
        for d in (-3, -2, 2, 3):
            assert eval_dim(f"N // {d}", {"N": n}) == n // d
            assert eval_dim(f"N // (0 - {d})", {"N": n}) == n // -d
            assert eval_dim(f"N % {d}", {"N": n}) == n % d


def test_dim_names_and_cache() -> None:
    assert dim_names("N*K + max(M, 3)") == {"N", "K", "M"}
    assert dim_names("784") == set()
    assert dim_names("batch_size - 1") == {"batch_size"}
    assert compile_dim("N + 1") is compile_dim("N + 1")
    assert compile_dim("3 * 4").constant == 12
    assert compile_dim("N").constant is None


def test_eval_extent_clamps_at_zero() -> None:
    assert eval_extent("N - 5", {"N": 3}) == 0
    assert eval_extent("N - 5", {"N": 8}) == 3
    assert eval_extent("-N", {"N": 2}) == 0
    assert eval_dim("N - 5", {"N": 3}) == -2


def test_eval_dim_unknown_name() -> None:
    with pytest.raises(KeyError, match="'N \\+ M' uses unknown name 'M'"):
        eval_dim("N + M", {"N": 1})


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty expression"),
        ("N +", "expected a number, a name or '\\(', found end of text"),
        ("(N", "expected '\\)'"),
        ("N)", "unexpected '\\)'"),
        ("N / 2", "use '//' for floor division"),
        ("3N", "unexpected 'N'"),
        ("N ** 2", "expected a number"),
        ("N ^ 2", "unexpected character '\\^'"),
        ("min()", "expected a number"),
        ("__import__('os')", "unexpected character"),
    ],
)
def test_malformed_dims(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=f"invalid dimension expression .*{reason}"):
        compile_dim(text)


def test_division_by_zero() -> None:
    with pytest.raises(ZeroDivisionError, match="by zero"):
        eval_dim("N // M", {"N": 4, "M": 0})


# -- signature: construction, serialization, printing ----------------------------------------


def test_round_trip_and_str() -> None:
    sig = Signature.from_dict(MLP)
    assert Signature.from_dict(json.loads(json.dumps(sig.to_dict()))) == sig
    assert sig.to_dict() == MLP
    assert str(sig) == (
        "mlp(x: f32[N, 784], w1: f32[784, H], b1: f32[H], w2: f32[H, 10], b2: f32[10])"
        " -> f32[N, 10]"
    )
    assert sig.symbols == ("N", "H")
    assert [param.name for param in sig.params] == ["x", "w1", "b1", "w2", "b2"]
    assert sig.results[0].shape == ("N", "10")


def test_str_scalars_and_tuple_results() -> None:
    sig = make_signature(
        [("x", "f32", ["N", "784"]), ("lr", "f32", [])],
        results=[("f32", ["64", "10"]), ("f32", [])],
    )
    assert str(sig) == "f(x: f32[N, 784], lr: f32) -> (f32[64, 10], f32)"
    constrained = Signature.from_dict(
        {
            "name": "g",
            "params": [{"name": "x", "dtype": "i64", "shape": ["N"]}],
            "results": [{"name": "r", "dtype": "i64", "shape": ["N - 1"]}],
            "constraints": [
                {"kind": "lt", "lhs": "5", "rhs": "N", "error": "IndexError", "message": "m"}
            ],
        }
    )
    assert str(constrained) == "g(x: i64[N]) -> i64[N - 1]"
    assert Signature.from_dict(constrained.to_dict()) == constrained


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.pop("params"), "missing key 'params'"),
        (lambda d: d["params"][0].update(dtype="f8"), "unknown dtype 'f8'"),
        (lambda d: d["params"][0].update(shape=["N + 1", "784"]), "must be a name or an integer"),
        (lambda d: d["results"][0].update(shape=["K", "10"]), "uses K, not bound by any param"),
        (lambda d: d["params"][1].update(name="x"), "duplicate parameter name 'x'"),
        (
            lambda d: d["constraints"].append(
                {"kind": "ne", "lhs": "N", "rhs": "H", "error": "ValueError", "message": ""}
            ),
            "unknown constraint kind 'ne'",
        ),
        (
            lambda d: d["constraints"].append(
                {"kind": "eq", "lhs": "N", "rhs": "H", "error": "SystemExit", "message": ""}
            ),
            "must be ValueError or IndexError",
        ),
    ],
)
def test_invalid_manifest_signature(mutate, match: str) -> None:
    data = json.loads(json.dumps(MLP))
    mutate(data)
    with pytest.raises(ArtifactError, match=match):
        Signature.from_dict(data)


def test_not_a_mapping() -> None:
    with pytest.raises(ArtifactError, match="invalid function signature"):
        Signature.from_dict(["mlp"])  # type: ignore[arg-type]


# -- bind: counts and keywords ---------------------------------------------------------------


def test_bind_ok() -> None:
    sig = Signature.from_dict(MLP)
    args = mlp_args(n=3, hidden=16)
    bound = sig.bind(args)
    assert isinstance(bound, BoundCall)
    assert bound.dims == {"N": 3, "H": 16}
    assert bound.result_shapes == [(3, 10)]
    assert bound.result_dtypes == [np.dtype(np.float32)]
    assert all(out is arg for out, arg in zip(bound.arrays, args))  # no needless copies


def test_wrong_argument_count() -> None:
    sig = Signature.from_dict(MLP)
    with pytest.raises(
        TypeError,
        match=r"^mlp\(\) takes 5 arguments \(x, w1, b1, w2, b2\) but 4 were given "
        r"\(missing 'b2'\)$",
    ):
        sig.bind(mlp_args()[:4])
    with pytest.raises(TypeError, match=r"takes 5 arguments .* but 6 were given"):
        sig.bind([*mlp_args(), 1.0])
    one = make_signature([("x", "f32", [])])
    with pytest.raises(TypeError, match=r"f\(\) takes 1 argument \(x\) but 0 were given \("):
        one.bind([])
    none = make_signature([])
    with pytest.raises(TypeError, match=r"f\(\) takes no arguments but 1 was given"):
        none.bind([1])


def test_keyword_arguments() -> None:
    sig = Signature.from_dict(MLP)
    x, w1, b1, w2, b2 = mlp_args()
    bound = sig.bind([x, w1], {"b2": b2, "w2": w2, "b1": b1})
    assert [a is b for a, b in zip(bound.arrays, [x, w1, b1, w2, b2])] == [True] * 5
    bound = sig.bind((), {"x": x, "w1": w1, "b1": b1, "w2": w2, "b2": b2})
    assert bound.dims == {"N": 3, "H": 16}
    with pytest.raises(TypeError, match=r"mlp\(\) got an unexpected keyword argument 'z'"):
        sig.bind([x, w1, b1, w2], {"z": b2})
    with pytest.raises(TypeError, match=r"mlp\(\) got multiple values for argument 'x'"):
        sig.bind([x, w1, b1, w2], {"x": x})
    with pytest.raises(TypeError, match=r"but 4 were given \(missing 'b2'\)"):
        sig.bind([x, w1, b1], {"w2": w2})


# -- bind: argument kinds and dtypes ---------------------------------------------------------


def test_unsupported_argument_type() -> None:
    sig = make_signature([("x", "f32", ["N"]), ("k", "i32", [])])
    with pytest.raises(
        TypeError,
        match=r"^f\(\): parameter 'x' expects f32\[N\], got list "
        r"\(convert it with np\.asarray\(\.\.\., dtype=np\.float32\)\)$",
    ):
        sig.bind([[1.0, 2.0], 1])
    with pytest.raises(TypeError, match=r"^f\(\): parameter 'k' expects i32, got str$"):
        sig.bind([np.zeros(2, np.float32), "1"])
    with pytest.raises(TypeError, match=r"parameter 'k' expects .* got complex"):
        sig.bind([np.zeros(2, np.float32), 1j])


def test_array_like_objects() -> None:
    class WithArray:
        def __array__(self, dtype=None, copy=None):
            return np.arange(4, dtype=np.float32)

    class WithInterface:
        def __init__(self) -> None:
            self.__array_interface__ = np.arange(3, dtype=np.float32).__array_interface__
            self._keep = None

    sig = make_signature([("x", "f32", ["N"])], results=[("f32", ["N"])])
    assert sig.bind([WithArray()]).result_shapes == [(4,)]
    source = np.arange(3, dtype=np.float32)
    interface = WithInterface()
    interface.__array_interface__ = source.__array_interface__
    interface._keep = source
    bound = sig.bind([interface])
    assert bound.dims == {"N": 3}
    np.testing.assert_array_equal(bound.arrays[0], source)


def test_no_silent_downcast() -> None:
    sig = make_signature([("x", "f32", ["N"]), ("y", "i32", ["N"])])
    with pytest.raises(
        TypeError,
        match=r"^f\(\): parameter 'y' expects i32, got int64 "
        r"\(no silent downcast; pass y\.astype\(np\.int32\)\)$",
    ):
        sig.bind([np.zeros(3, np.float32), np.zeros(3, np.int64)])
    with pytest.raises(TypeError, match=r"parameter 'x' expects f32, got float64 .*np\.float32"):
        sig.bind([np.zeros(3, np.float64), np.zeros(3, np.int32)])
    with pytest.raises(TypeError, match=r"parameter 'x' expects f32, got str32 \(pass an array"):
        sig.bind([np.array(["a"]), np.zeros(1, np.int32)])


def test_safe_upcast() -> None:
    sig = make_signature([("x", "f64", ["N"]), ("m", "i64", ["N"]), ("s", "f64", [])])
    x = np.arange(3, dtype=np.int32)
    m = np.array([True, False, True])
    bound = sig.bind([x, m, np.float32(2.5)])
    assert bound.arrays[0].dtype == np.float64
    np.testing.assert_array_equal(bound.arrays[0], [0.0, 1.0, 2.0])
    assert bound.arrays[1].dtype == np.int64
    assert bound.arrays[2].dtype == np.float64 and bound.arrays[2].shape == ()
    assert x.dtype == np.int32  # the caller's array is untouched


def test_non_native_byte_order_is_converted() -> None:
    sig = make_signature([("x", "f32", ["N"])])
    swapped = np.arange(4, dtype=">f4")
    converted = sig.bind([swapped]).arrays[0]
    assert converted.dtype == np.dtype("=f4")
    np.testing.assert_array_equal(converted, [0, 1, 2, 3])


# -- bind: scalars ---------------------------------------------------------------------------


def test_python_and_numpy_scalars() -> None:
    sig = make_signature([("b", "bool", []), ("k", "i32", []), ("lr", "f32", []), ("d", "f64", [])])
    bound = sig.bind([True, 7, 0.5, 3])
    assert [a.dtype for a in bound.arrays] == [np.bool_, np.int32, np.float32, np.float64]
    assert [a.shape for a in bound.arrays] == [()] * 4
    assert [a.item() for a in bound.arrays] == [True, 7, 0.5, 3.0]
    bound = sig.bind([np.bool_(False), np.int32(-2), np.float32(1.5), np.array(2.0)])
    assert [a.item() for a in bound.arrays] == [False, -2, 1.5, 2.0]
    bound = sig.bind([True, True, True, float("inf")])  # bool casts safely to anything
    assert [a.item() for a in bound.arrays] == [True, 1, 1.0, float("inf")]


def test_scalar_type_errors() -> None:
    sig = make_signature([("b", "bool", []), ("k", "i32", []), ("lr", "f32", [])])
    with pytest.raises(TypeError, match=r"f\(\): parameter 'k' expects i32, got float"):
        sig.bind([True, 1.5, 0.5])
    with pytest.raises(TypeError, match=r"f\(\): parameter 'b' expects bool, got int"):
        sig.bind([1, 1, 0.5])
    with pytest.raises(TypeError, match=r"parameter 'lr' expects f32, got float64"):
        sig.bind([True, 1, np.float64(0.5)])  # a NumPy scalar keeps its dtype
    with pytest.raises(TypeError, match=r"parameter 'k' expects i32, got int64"):
        sig.bind([True, np.int64(1), 0.5])


def test_scalar_out_of_range() -> None:
    sig = make_signature([("k", "i32", []), ("h", "f16", []), ("lr", "f32", [])])
    with pytest.raises(ValueError, match=r"'k' expects i32, got 2147483648, out of range \[-21"):
        sig.bind([2**31, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"'k' expects i32, got an int of 1001 bits, out of range"):
        sig.bind([2**1000, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"parameter 'h' expects f16, got 70000, out of range"):
        sig.bind([1, 70000, 1.0])
    with pytest.raises(ValueError, match=r"parameter 'lr' expects f32, got 1e\+300, out of range"):
        sig.bind([1, 1, 1e300])
    with pytest.raises(
        ValueError, match=r"parameter 'lr' expects f32, got an int of 1329 bits, out"
    ):
        sig.bind([1, 1, 10**400])
    assert sig.bind([-(2**31), 65504, 3.4e38]).arrays[0].item() == -(2**31)


def test_python_scalar_for_array_param() -> None:
    sig = make_signature([("x", "f32", ["N", "784"])])
    with pytest.raises(
        ValueError,
        match=r"f\(\): parameter 'x' expects a 2-d array of shape \[N, 784\], got a Python float",
    ):
        sig.bind([1.0])
    with pytest.raises(
        ValueError, match=r"expects a 2-d array of shape \[N, 784\], got shape \(\)$"
    ):
        sig.bind([np.float32(1.0)])


# -- bind: shapes ----------------------------------------------------------------------------


def test_rank_mismatch() -> None:
    sig = Signature.from_dict(MLP)
    args = mlp_args()
    args[0] = np.zeros(3, np.float32)
    with pytest.raises(
        ValueError,
        match=r"^mlp\(\): parameter 'x' expects a 2-d array of shape \[N, 784\], got shape \(3,\)$",
    ):
        sig.bind(args)
    scalar = make_signature([("lr", "f32", [])])
    with pytest.raises(
        ValueError, match=r"parameter 'lr' expects a scalar \(f32\), got shape \(1,\)"
    ):
        scalar.bind([np.zeros(1, np.float32)])


def test_static_size_mismatch() -> None:
    sig = Signature.from_dict(MLP)
    args = mlp_args()
    args[0] = np.zeros((3, 783), np.float32)
    with pytest.raises(
        ValueError,
        match=r"^mlp\(\): parameter 'x' expects size 784 on axis 1, got 783 "
        r"\(expected shape \[N, 784\], got shape \(3, 783\)\)$",
    ):
        sig.bind(args)


def test_inconsistent_symbol() -> None:
    sig = make_signature([("x", "f32", ["N", "784"]), ("w1", "f32", ["N", "64"])])
    with pytest.raises(
        ValueError,
        match=r"^f\(\): parameter 'w1' has N=5 on axis 0 but parameter 'x' bound N=3 on axis 0 "
        r"\('w1' has shape \(5, 64\), declared \[N, 64\]; "
        r"'x' has shape \(3, 784\), declared \[N, 784\]\)$",
    ):
        sig.bind([np.zeros((3, 784), np.float32), np.zeros((5, 64), np.float32)])
    square = make_signature([("a", "f64", ["N", "N"])])
    with pytest.raises(
        ValueError, match=r"parameter 'a' has N=4 on axis 1 but parameter 'a' bound N=3"
    ):
        square.bind([np.zeros((3, 4))])


def test_constraints() -> None:
    sig = make_signature(
        [("x", "f32", ["N"]), ("y", "f32", ["M"])],
        results=[("f32", ["N"])],
        constraints=[
            {
                "kind": "eq",
                "lhs": "N",
                "rhs": "M",
                "error": "ValueError",
                "message": "model.tc:3:9: x + y: dimension N of x and M of y must be equal",
            },
            {
                "kind": "lt",
                "lhs": "5",
                "rhs": "N",
                "error": "IndexError",
                "message": "model.tc:4:5: index 5 is out of range for axis 0 of x",
            },
            {"kind": "le", "lhs": "N", "rhs": "2 * M", "error": "ValueError", "message": ""},
        ],
    )
    assert sig.bind([np.zeros(6, np.float32), np.zeros(6, np.float32)]).dims == {"N": 6, "M": 6}
    with pytest.raises(
        ValueError,
        match=r"^model\.tc:3:9: x \+ y: dimension N of x and M of y must be equal \(N=3, M=4\)$",
    ):
        sig.bind([np.zeros(3, np.float32), np.zeros(4, np.float32)])
    with pytest.raises(
        IndexError, match=r"^model\.tc:4:5: index 5 is out of range for axis 0 of x \(N=5\)$"
    ):
        sig.bind([np.zeros(5, np.float32), np.zeros(5, np.float32)])


def test_le_constraint_default_message() -> None:
    sig = make_signature(
        [("x", "f32", ["N"]), ("y", "f32", ["M"])],
        constraints=[{"kind": "le", "lhs": "N", "rhs": "2 * M", "error": "ValueError"}],
    )
    sig.bind([np.zeros(4, np.float32), np.zeros(2, np.float32)])  # 4 <= 4
    with pytest.raises(ValueError, match=r"constraint N <= 2 \* M does not hold \(N=5, M=2\)"):
        sig.bind([np.zeros(5, np.float32), np.zeros(2, np.float32)])


def test_result_shapes_from_expressions() -> None:
    sig = make_signature(
        [("x", "f32", ["N", "K"]), ("y", "f32", ["M"])],
        results=[
            ("f32", ["N + M", "3"]),
            ("f32", ["N - 1"]),
            ("i64", ["(N + 1) // 2", "min(K, 2)", "max(M - 10, 0)"]),
            ("f32", ["K", "N"]),
            ("f64", []),
        ],
    )
    bound = sig.bind([np.zeros((0, 5), np.float32), np.zeros(4, np.float32)])
    assert bound.dims == {"N": 0, "K": 5, "M": 4}
    # N - 1 of an empty axis is clamped at 0, never negative
    assert bound.result_shapes == [(4, 3), (0,), (0, 2, 0), (5, 0), ()]
    assert bound.result_dtypes == [np.dtype(t) for t in ("f4", "f4", "i8", "f4", "f8")]
    bound = sig.bind([np.zeros((7, 1), np.float32), np.zeros(12, np.float32)])
    assert bound.result_shapes == [(19, 3), (6,), (4, 1, 2), (1, 7), ()]


def test_bf16_is_refused_from_numpy() -> None:
    sig = make_signature([("x", "bf16", ["N"])], results=[("bf16", ["N"])])
    assert str(sig) == "f(x: bf16[N]) -> bf16[N]"
    with pytest.raises(TypeError, match=r"parameter 'x' is bf16; bf16 has no NumPy dtype"):
        sig.bind([np.zeros(3, np.float32)])


# -- bind: memory layout ---------------------------------------------------------------------


def test_non_contiguous_input_is_copied() -> None:
    sig = make_signature([("x", "f32", ["N", "M"])])
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    for view in (base[:, ::2], base.T, base[::-1]):
        before = view.copy()
        converted = sig.bind([view]).arrays[0]
        assert converted.flags.c_contiguous and converted.flags.aligned
        assert converted is not view
        np.testing.assert_array_equal(converted, view)
        np.testing.assert_array_equal(view, before)
        assert not np.shares_memory(converted, base)


def test_misaligned_input_is_copied() -> None:
    sig = make_signature([("x", "f64", ["N"])])
    raw = np.zeros(8 * 4 + 1, np.uint8)
    misaligned = raw[1:].view(np.float64)
    assert not misaligned.flags.aligned
    converted = sig.bind([misaligned]).arrays[0]
    assert converted.flags.aligned and converted.flags.c_contiguous
    np.testing.assert_array_equal(converted, misaligned)


def test_caller_arrays_untouched() -> None:
    sig = make_signature([("x", "f64", ["N"]), ("y", "f32", ["N"])])
    x = np.arange(3, dtype=np.float32)  # upcast to f64: converted copy
    y = np.arange(6, dtype=np.float32)[::2]  # strided: contiguous copy
    x_before, y_before = x.copy(), y.copy()
    bound = sig.bind([x, y])
    bound.arrays[0][:] = -1
    bound.arrays[1][:] = -1
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(y, y_before)
    assert x.dtype == np.float32 and not y.flags.c_contiguous


def test_read_only_input_is_not_copied() -> None:
    sig = make_signature([("x", "f32", ["N"])])
    x = np.arange(3, dtype=np.float32)
    x.flags.writeable = False
    assert sig.bind([x]).arrays[0] is x


# -- performance -----------------------------------------------------------------------------


def test_bind_is_fast() -> None:
    """bind() of 3 small arrays takes ~3 us on the development machine:

    timeit.timeit(lambda: sig.bind((x, w, b)), number=100_000) / 100_000

    The bound asserted here is loose so that a loaded CI machine does not fail it.
    """
    sig = make_signature(
        [("x", "f32", ["N", "4"]), ("w", "f32", ["4", "M"]), ("b", "f32", ["M"])],
        results=[("f32", ["N", "M"])],
    )
    args = (np.ones((3, 4), np.float32), np.ones((4, 5), np.float32), np.ones(5, np.float32))
    number = 2000
    per_call = min(timeit.repeat(lambda: sig.bind(args), number=number, repeat=5)) / number
    assert per_call < 100e-6

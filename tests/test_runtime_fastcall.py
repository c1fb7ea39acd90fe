"""The generated fast call (tensorc_runtime/fastcall.py) against the general path.

Each artifact function is called three ways natively -- ``__tensorc_invoke_checked`` (flags
checked in C), ``__tensorc_invoke`` (flags checked in Python) and the entry point with packed
addresses -- and each must give the general path's results for arrays it takes as they are
and for arrays it must hand over (strided, misaligned, Fortran-order), and the general path's
errors for every way of binding arguments wrongly.
"""

from __future__ import annotations

import ctypes
import inspect
import struct

import numpy as np
import pytest
import tensorc_runtime
from tensorc_runtime import fastcall, layout, native

import tensorc

SCALE_ROWS = "def f(x: f32[N, M], b: f32[M]) -> f32[N, M] { return x * b + 1.0 }"
CLASHING = "def g(empty: f32[N], d0: f32[N]) -> f32[N] { return empty - d0 }"
WAYS = [fastcall.CHECKED, fastcall.INVOKE, fastcall.PLAIN]


def load_calling(path: str, way: str, monkeypatch: pytest.MonkeyPatch):
    """The artifact at `path`, loaded with its functions calling native code `way`."""

    def native_call(library, signature, format_version):
        if way == fastcall.PLAIN:
            return way, None
        invoke = library[native.invoke_symbols(format_version)[way]]
        invoke.argtypes, invoke.restype = None, ctypes.c_int32
        return way, invoke

    with monkeypatch.context() as patch:
        patch.setattr(native, "_native_call", native_call)
        return tensorc_runtime.load(path)


@pytest.fixture(scope="module")
def scale_rows_path() -> str:
    return tensorc.compile(SCALE_ROWS).path


def misaligned(shape: tuple[int, ...]) -> np.ndarray:
    count = int(np.prod(shape))
    raw = np.zeros(4 * count + 1, np.uint8)
    array = np.frombuffer(raw.data, np.float32, count=count, offset=1).reshape(shape)
    array[...] = np.arange(count, dtype=np.float32).reshape(shape) / 7
    assert not array.flags.aligned
    return array


def argument_cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3), dtype=np.float32)
    b = rng.standard_normal(3, dtype=np.float32)
    frozen = x.copy()
    frozen.flags.writeable = False
    return {
        "contiguous": (x, b),
        "strided rows": (rng.standard_normal((10, 3), dtype=np.float32)[::2], b),
        "fortran order": (np.asfortranarray(x), b),
        "misaligned": (misaligned((5, 3)), misaligned((3,))),
        "read-only": (frozen, b),
        "zero rows": (np.zeros((0, 3), np.float32), b),
    }


@pytest.mark.parametrize("way", WAYS)
def test_every_native_way_gives_the_general_paths_results(
    way: str, scale_rows_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = load_calling(scale_rows_path, way, monkeypatch).f
    marker = {fastcall.CHECKED: "48, 257", fastcall.INVOKE: "invoke(", fastcall.PLAIN: "entry("}
    assert marker[way] in type(f)._source
    for label, (x, b) in argument_cases().items():
        got = f(x, b)
        np.testing.assert_array_equal(got, f._call_general((x, b), None), err_msg=label)
        np.testing.assert_allclose(got, x * b + 1, rtol=1e-6, err_msg=label)
        assert got.flags.c_contiguous and got.dtype == np.float32


def outcome(call, *args, **kwargs) -> object:
    try:
        return ("result", call(*args, **kwargs).tolist())
    except (TypeError, ValueError) as error:
        return (type(error).__name__, str(error))


@pytest.mark.parametrize("way", WAYS)
def test_named_parameters_bind_like_the_general_path(
    way: str, scale_rows_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = load_calling(scale_rows_path, way, monkeypatch).f
    assert type(f)._source.startswith("def __call__(_self, x=MISSING, b=MISSING, *_extra):")
    assert str(inspect.signature(f)) == "(x: 'f32[N, M]', b: 'f32[M]') -> 'f32[N, M]'"
    x, b = np.ones((2, 3), np.float32), np.arange(3, dtype=np.float32)
    calls = [
        ((x, b), {}),
        ((), {"x": x, "b": b}),
        ((), {"b": b, "x": x}),
        ((x,), {"b": b}),
        ((), {}),
        ((x,), {}),
        ((), {"b": b}),
        ((), {"x": x}),
        ((x, b, b), {}),
        ((x, b), {"c": b}),
        ((x,), {"x": x}),
        ((x, b), {"b": b}),
        ((b, b), {}),
        ((x, x), {}),
        ((x.astype(np.float64), b), {}),
        ((x, [1.0, 2.0, 3.0]), {}),
    ]
    for args, kwargs in calls:
        fast = outcome(f, *args, **kwargs)
        general = outcome(f._call_general, args, kwargs)
        assert fast == general, (len(args), sorted(kwargs))
    assert outcome(f, x, b, b)[1] == "f() takes 2 arguments (x, b) but 3 were given"
    assert outcome(f, x, c=b)[1] == "f() got an unexpected keyword argument 'c'"


REPEATED_DIMS = """
def square(a: f32[N, N]) -> f32[N, N] { return a + a.T }
def frame(y: f32[N], x: f32[M, N, M]) -> f32[M, N, M] { return x * expand_dims(y, 1) }
"""


@pytest.mark.parametrize("way", WAYS)
def test_a_dim_repeated_within_one_parameter_is_checked_against_itself(
    way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = load_calling(tensorc.compile(REPEATED_DIMS).path, way, monkeypatch)
    a = np.arange(9, dtype=np.float32).reshape(3, 3)
    np.testing.assert_array_equal(module.square(a), a + a.T)
    np.testing.assert_array_equal(module.square(a=a), a + a.T)
    y, x = np.arange(2, dtype=np.float32), np.ones((3, 2, 3), np.float32)
    np.testing.assert_array_equal(module.frame(y, x), x * y[:, None])
    message = r"parameter 'a' has N=4 on axis 1 but parameter 'a' bound N=3 on axis 0 \('a' has"
    with pytest.raises(ValueError, match=message):
        module.square(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match=r"parameter 'x' has M=4 on axis 2 but parameter 'x'"):
        module.frame(y, np.ones((3, 2, 4), np.float32))
    with pytest.raises(ValueError, match=r"parameter 'x' has N=3 on axis 1 but parameter 'y'"):
        module.frame(y, np.ones((3, 3, 3), np.float32))


def test_clashing_parameter_names_fall_back_to_unpacking() -> None:
    g = tensorc.compile(CLASHING).g
    source = type(g)._source
    assert source.startswith("def __call__(self, /, *args, **kwargs):")
    assert str(inspect.signature(g)) == "(empty: 'f32[N]', d0: 'f32[N]') -> 'f32[N]'"
    a, b = np.arange(4, dtype=np.float32), np.ones(4, np.float32)
    np.testing.assert_array_equal(g(a, b), a - b)
    np.testing.assert_array_equal(g(d0=b, empty=a), a - b)
    with pytest.raises(TypeError, match="unexpected keyword argument 'x'"):
        g(a, x=b)


@pytest.mark.parametrize("way", WAYS)
def test_dimensions_spelled_like_the_placeholder_parameters(
    way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the generated text holds dimension names as strings: they must stay what they are
    source = "def f(x: f32[__tc_param0]) -> f32[__tc_param0 - 1] { return x[1:] }"
    module = load_calling(tensorc.compile(source).path, way, monkeypatch)
    x = np.arange(4, dtype=np.float32)
    np.testing.assert_array_equal(module.f(x), x[1:])
    np.testing.assert_array_equal(module.f(x=x), x[1:])


def test_array_struct_offsets_are_verified() -> None:
    assert layout.DATA_OFFSET is not None and layout.FLAGS_OFFSET is not None
    grid = np.arange(24.0).reshape(4, 6)
    for array in (grid, grid[:, ::2], grid.T, misaligned((2, 2)), np.zeros(()), grid[1:]):
        data = id(array) + layout.DATA_OFFSET
        assert ctypes.c_void_p.from_address(data).value == array.ctypes.data
        flags = ctypes.c_int32.from_address(data + layout.FLAGS_OFFSET).value
        assert flags == array.flags.num
        usable = array.flags.c_contiguous and array.flags.aligned
        assert (flags & layout.FLAGS_REQUIRED == layout.FLAGS_REQUIRED) == usable


def test_checked_invoke_declines_before_calling(scale_rows_path: str) -> None:
    """__tensorc_invoke_checked returns INVOKE_DECLINED, writing nothing, when an argument is
    not C-contiguous and aligned; the same packet with usable arrays runs the entry point."""
    library = ctypes.CDLL(scale_rows_path)
    invoke = library["__tensorc_invoke_checked"]
    invoke.argtypes, invoke.restype = None, ctypes.c_int32
    entry = ctypes.cast(library.tensorc_f, ctypes.c_void_p).value
    b = np.full(3, 2.0, np.float32)
    out = np.zeros((4, 3), np.float32)

    def call(x: np.ndarray) -> int:
        fields = [id(array) + layout.DATA_OFFSET for array in (x, b, out)]
        header = [entry, 2, 1, 2, layout.FLAGS_OFFSET, layout.FLAGS_REQUIRED]
        return invoke(struct.pack("=9Q2q", *header, *fields, 4, 3))

    for unusable in (np.ones((8, 3), np.float32)[::2], np.ones((3, 4), np.float32).T,
                     misaligned((4, 3))):
        assert call(unusable) == fastcall.INVOKE_DECLINED
        assert not out.any()
    assert call(np.ones((4, 3), np.float32)) == 0
    np.testing.assert_array_equal(out, np.full((4, 3), 3.0, np.float32))


RECEIVER_NAMES = """
def s(self: f32[N], args: f32[N], MISSING: f32[N]) -> f32[N] { return self + args - MISSING }
def t(self: f32[N], kwargs: f32[N], _self: f32[N]) -> f32[N] { return self * kwargs - _self }
"""


@pytest.mark.parametrize("target", ["cpu", "interp"])
def test_parameters_may_be_called_self_args_or_kwargs(target: str) -> None:
    """Names Python's own call machinery uses are ordinary tensorc parameter names, by
    position and by keyword (the receiver is positional-only)."""
    module = tensorc.compile(RECEIVER_NAMES, target=target)
    a, b, c = (np.full(3, v, np.float32) for v in (1.0, 2.0, 4.0))
    np.testing.assert_array_equal(module.s(a, b, c), a + b - c)
    np.testing.assert_array_equal(module.s(MISSING=c, self=a, args=b), a + b - c)
    np.testing.assert_array_equal(module.t(self=a, kwargs=b, _self=c), a * b - c)
    with pytest.raises(TypeError, match="got multiple values for argument 'self'"):
        module.s(a, b, c, self=a)
    if target == "cpu":
        assert str(inspect.signature(module.t)).startswith("(self: 'f32[N]', kwargs:")


def test_functions_named_like_module_attributes_leave_them_working() -> None:
    """`def path` / `def target` do not replace the module's own attributes (repr used to
    raise); such functions are reachable by item."""
    module = tensorc.compile(
        "def path(x: f32[N]) -> f32[N] { return x + 1.0 }\n"
        "def target(x: f32[N]) -> f32[N] { return x * 2.0 }\n"
        "def other(x: f32[N]) -> f32[N] { return x }"
    )
    assert module.target == "cpu" and module.path.endswith(".so")
    assert repr(module).endswith("): path, target, other>")
    x = np.arange(3, dtype=np.float32)
    np.testing.assert_array_equal(module["path"](x), x + 1)
    np.testing.assert_array_equal(module["target"](x), x * 2)
    np.testing.assert_array_equal(module.other(x), x)

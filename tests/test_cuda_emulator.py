"""The CUDA backend end to end without a GPU: every corpus program is compiled to a CUDA
artifact, loaded by `tensorc_runtime.cuda` on the CPU emulator (the same kernels, one thread
per GPU thread, `tensorc.codegen.cuda.emulator`) and checked against the interpreter --
with the planned grids and with grids of one or two blocks (grid-stride loops must cope),
with NumPy arrays and with device arrays, at -O2 and -O0; plus index errors, empty sizes,
argument errors, random programs and the bool matmul (IR only)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorc_runtime.cuda as cuda_runtime
from hypothesis import HealthCheck, given, settings
from progen import programs, sizes_strategy
from test_cuda_programs import CASES, CASES_BY_NAME, Case, assert_matches, inputs, interp_module

import tensorc
from tensorc.codegen.cuda.backend import CudaBuild
from tensorc.codegen.cuda.emulator import EmulatedArray, EmulatedDevice, build_emulation_library
from tensorc.driver import CompileOptions, Source, compile_to_ir


class Emulated:
    """A case compiled to a CUDA artifact and loaded on the emulator."""

    def __init__(self, text: str, directory: Path, name: str, opt_level: int = 2,
                 filename: str | None = None) -> None:
        source = Source(text, filename or f"{name}.tc")
        module, _ = compile_to_ir(source, CompileOptions(opt_level=opt_level))
        self.build = CudaBuild.create(module, text, opt_level, "sm_80", use_ptxas=False)
        self.artifact = directory / f"{name}.so"
        self.build.write_shared_object(self.artifact)
        library = build_emulation_library(self.build.module, directory / f"{name}_emu.so")
        self.device = EmulatedDevice(library)
        self.module = cuda_runtime.load(self.artifact, device=self.device)


_BUILT: dict[tuple[str, int], Emulated] = {}


def emulated(case: Case, tmp_path_factory: pytest.TempPathFactory, opt_level: int = 2):
    key = (case.name, opt_level)
    if key not in _BUILT:
        directory = tmp_path_factory.mktemp(f"emu-{case.name}-O{opt_level}")
        _BUILT[key] = Emulated(case.text, directory, case.name, opt_level)
    return _BUILT[key]


def check_case(case: Case, built: Emulated, seed: int = 0) -> None:
    reference = interp_module(case)
    rng = np.random.default_rng(seed)
    for name in case.functions:
        args = inputs(case, reference.functions[name], rng)
        want = getattr(reference, name)(*args)
        got = built.module[name](*args)
        assert_matches(got, want, f"{case.name}.{name}")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case_agrees_with_the_interpreter(case: Case, tmp_path_factory) -> None:
    built = emulated(case, tmp_path_factory)
    built.device.grid_limit = None
    check_case(case, built)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case_with_tiny_grids(case: Case, tmp_path_factory) -> None:
    built = emulated(case, tmp_path_factory)
    try:
        for limit in (1, 2):
            built.device.grid_limit = limit
            check_case(case, built, seed=limit)
    finally:
        built.device.grid_limit = None


@pytest.mark.parametrize("name", ["affine", "softmax_symbolic", "matmul_epilogue", "scatter",
                                  "mlp", "full_reductions", "sum_columns"])
def test_case_unfused_at_O0(name: str, tmp_path_factory) -> None:
    case = CASES_BY_NAME[name]
    check_case(case, emulated(case, tmp_path_factory, opt_level=0))


def test_device_arrays_in_place_give_device_arrays(tmp_path_factory) -> None:
    case = CASES_BY_NAME["matmul_epilogue"]
    built = emulated(case, tmp_path_factory)
    reference = interp_module(case)
    args = inputs(case, reference.functions["f"], np.random.default_rng(3))
    device_args = [EmulatedArray.from_host(a) for a in args]
    result = built.module.f(*device_args)
    assert isinstance(result, EmulatedArray)
    assert_matches(result.get(), reference.f(*args))
    mixed = built.module.f(args[0], device_args[1], args[2])  # any device array: device out
    assert isinstance(mixed, EmulatedArray)
    assert_matches(mixed.get(), reference.f(*args))
    by_keyword = built.module.f(x=device_args[0], w=args[1], b=device_args[2])
    assert_matches(by_keyword.get(), reference.f(*args))


def test_device_array_errors(tmp_path_factory) -> None:
    case = CASES_BY_NAME["matmul_epilogue"]
    built = emulated(case, tmp_path_factory)
    x, w, b = inputs(case, interp_module(case).functions["f"], np.random.default_rng(0))
    with pytest.raises(TypeError, match="parameter 'x' expects f32, got a device array of "
                                        "float64"):
        built.module.f(EmulatedArray.from_host(x.astype(np.float64)), w, b)
    with pytest.raises(ValueError, match="parameter 'w'"):
        built.module.f(x, EmulatedArray.from_host(w[:-1]), b)
    with pytest.raises(TypeError):
        built.module.f(x, w)


def test_numpy_argument_checks_match_the_cpu_runtime(tmp_path_factory) -> None:
    case = CASES_BY_NAME["affine"]
    built = emulated(case, tmp_path_factory)
    x = np.ones((3, 4), np.float32)
    with pytest.raises(TypeError, match="no silent downcast"):
        built.module.f(x.astype(np.float64), np.ones(4, np.float32), 1.0)
    with pytest.raises(ValueError, match="parameter 'w'"):
        built.module.f(x, np.ones(5, np.float32), 1.0)
    strided = np.ones((3, 8), np.float32)[:, ::2]  # non-contiguous: copied
    np.testing.assert_allclose(built.module.f(strided, np.ones(4, np.float32), 2.0), 3.0)


@pytest.mark.parametrize("name", ["take", "take_along_axis", "scatter", "scatter_along_axis"])
def test_index_errors_match_the_interpreter(name: str, tmp_path_factory) -> None:
    case = CASES_BY_NAME[name]
    built = emulated(case, tmp_path_factory)
    reference = interp_module(case)
    args = inputs(case, reference.functions["f"], np.random.default_rng(0))
    bad = args[1].copy()
    flat = bad.reshape(-1)
    flat[min(3, flat.size - 1)] = 99
    flat[-1] = -99
    with pytest.raises(IndexError) as expected:
        reference.f(args[0], bad)
    with pytest.raises(IndexError) as caught:
        built.module.f(args[0], bad)
    assert str(caught.value) == str(expected.value)
    assert_matches(built.module.f(*args), reference.f(*args))  # still usable afterwards


@pytest.mark.parametrize("name,sizes", [
    ("affine", {"N": 0, "M": 4}),
    ("sum_rows", {"N": 3, "M": 0}),
    ("sum_columns", {"N": 0, "M": 6}),
    ("full_reductions", {"N": 0, "M": 3}),
    ("matmul_epilogue", {"N": 4, "K": 0, "M": 3}),
    ("matmul_epilogue", {"N": 0, "K": 5, "M": 3}),
    ("softmax_symbolic", {"N": 2, "M": 1}),
    ("take", {"V": 4, "D": 3, "N": 0}),
    ("argmax", {"N": 3, "M": 1}),
])
def test_small_and_empty_sizes(name: str, sizes: dict, tmp_path_factory) -> None:
    case = CASES_BY_NAME[name]
    built = emulated(case, tmp_path_factory)
    reference = interp_module(case)
    args = inputs(case, reference.functions["f"], np.random.default_rng(1), sizes)
    assert_matches(built.module.f(*args), reference.f(*args), f"{name} {sizes}")


def test_larger_sizes_use_warp_and_block_rows(tmp_path_factory) -> None:
    case = CASES_BY_NAME["softmax_symbolic"]
    built = emulated(case, tmp_path_factory)
    reference = interp_module(case)
    for sizes in ({"N": 3, "M": 1000}, {"N": 40, "M": 33}):
        args = inputs(case, reference.functions["f"], np.random.default_rng(2), sizes)
        assert_matches(built.module.f(*args), reference.f(*args), str(sizes))
    blocks = {block for name, _, block in built.device.launches if name.endswith("_row")}
    assert blocks >= {64, 256}  # block-mode rows get 32..256 threads from the row length


@pytest.mark.parametrize("name,sizes", [
    ("full_reductions", {"N": 300, "M": 40}),
    ("sum_rows", {"N": 2, "M": 5000}),
    ("sum_columns", {"N": 5000, "M": 3}),
    ("var_logsumexp", {"N": 3000, "M": 2}),
    ("bools", {"N": 4000}),
])
def test_long_reductions_of_few_points_run_split(name: str, sizes: dict,
                                                 tmp_path_factory) -> None:
    case = CASES_BY_NAME[name]
    built = emulated(case, tmp_path_factory)
    reference = interp_module(case)
    args = inputs(case, reference.functions["f"], np.random.default_rng(4), sizes)
    built.device.launches.clear()
    assert_matches(built.module.f(*args), reference.f(*args), f"{name} {sizes}")
    kinds = {kernel.rsplit("_", 1)[1] for kernel, _, _ in built.device.launches}
    assert {"partial", "finish"} <= kinds


def test_training_step_with_a_large_batch(tmp_path_factory) -> None:
    case = CASES_BY_NAME["mlp"]
    built = emulated(case, tmp_path_factory)
    reference = interp_module(case)
    sizes = {"N": 2100, "H": 40}
    args = inputs(case, reference.functions["train_step"], np.random.default_rng(5), sizes)
    assert_matches(built.module.train_step(*args), reference.train_step(*args), "train_step")


def test_synchronous_mode(tmp_path_factory, monkeypatch) -> None:
    monkeypatch.setenv("TENSORC_CUDA_SYNC", "1")
    case = CASES_BY_NAME["layer_norm"]
    check_case(case, emulated(case, tmp_path_factory))


def test_bool_matmul_from_ir(tmp_path: Path) -> None:
    text = textwrap.dedent("""
        func.func @f(%a: bool[N, K], %b: bool[K, M]) -> bool[N, M] {
          %0 = tc.matmul %a, %b : (bool[N, K], bool[K, M]) -> bool[N, M]
          func.return %0 : (bool[N, M]) -> ()
        }
    """)
    built = Emulated(text, tmp_path, "bool_matmul", filename="bool_matmul.tcir")
    rng = np.random.default_rng(0)
    a, b = rng.random((5, 4)) < 0.3, rng.random((4, 6)) < 0.3
    np.testing.assert_array_equal(built.module.f(a, b), (a.astype(int) @ b.astype(int)) > 0)


def test_launches_follow_the_plan(tmp_path_factory) -> None:
    case = CASES_BY_NAME["mlp"]
    built = emulated(case, tmp_path_factory)
    reference = interp_module(case)
    args = inputs(case, reference.functions["mlp"], np.random.default_rng(0))
    built.device.launches.clear()
    built.module.mlp(*args)
    plan = built.module["mlp"].plan
    assert [name for name, _, _ in built.device.launches] == [
        launch.kernel for launch in plan.launches()
    ]
    env = {"N": 37, "H": 70}
    assert [(grid, block) for _, grid, block in built.device.launches] == [
        (launch.grid(env), launch.block(env)) for launch in plan.launches()
    ]


SETTINGS = dict(deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(max_examples=12, **SETTINGS)
@given(program=programs(max_statements=6), sizes=sizes_strategy())
def test_random_programs_agree_with_the_interpreter(program, sizes, tmp_path_factory) -> None:
    directory = tmp_path_factory.mktemp("random")
    built = Emulated(program.source, directory, "random")
    reference = tensorc.compile(program.source, target="interp")
    rng = np.random.default_rng(0)
    args = program.inputs(rng, sizes)
    assert_matches(built.module.f(*args), reference.f(*args), program.source)


def _special_values(dtype: type) -> tuple[np.ndarray, np.ndarray]:
    info = np.finfo(dtype)
    values = np.array([0.0, -0.0, 1.0, -1.0, 0.1, -2.5, 3.0, 1e7, -1e7, 1e30, np.inf, -np.inf,
                       np.nan, info.tiny, info.tiny / 8, -info.tiny / 3, info.max], dtype)
    rng = np.random.default_rng(0)
    scale = 10.0 ** rng.integers(-12, 12, 2000)
    x = np.concatenate([np.repeat(values, values.size),
                        (rng.standard_normal(2000) * scale).astype(dtype)])
    y = np.concatenate([np.tile(values, values.size),
                        (rng.standard_normal(2000) * scale[::-1]).astype(dtype)])
    return x, y


def test_float_mod_and_floordiv_are_bit_exact(tmp_path: Path) -> None:
    """NVPTX's own `frem` is x - trunc(x/y)*y; the backend's fmod is exact, like NumPy's."""
    text = ("def f(x: f32[N], y: f32[N]) -> (f32[N], f32[N]) { return x % y, x // y }\n"
            "def g(x: f64[N], y: f64[N]) -> (f64[N], f64[N]) { return x % y, x // y }\n")
    built = Emulated(text, tmp_path, "fmod")
    reference = tensorc.compile(text, target="interp")
    for name, dtype, view in (("f", np.float32, np.uint32), ("g", np.float64, np.uint64)):
        x, y = _special_values(dtype)
        with np.errstate(all="ignore"):
            want = getattr(reference, name)(x, y)
        for got, expected in zip(getattr(built.module, name)(x, y), want):
            same = (got.view(view) == expected.view(view)) | (np.isnan(got) & np.isnan(expected))
            assert same.all(), (x[~same][:5], y[~same][:5], got[~same][:5], expected[~same][:5])


"""The CUDA backend on a real GPU (skipped without pycuda and an NVIDIA GPU): every corpus
program agrees with the interpreter through `tensorc.compile(target="cuda")`, with NumPy
arrays and with pycuda device arrays, from the cubin and from the PTX; index errors; empty
sizes; many threads calling at once."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from test_cuda_programs import CASES, CASES_BY_NAME, Case, assert_matches, inputs, interp_module

import tensorc

REASON = "needs pycuda and an NVIDIA GPU"


def _device():
    try:
        from tensorc_runtime.cuda import default_device

        return default_device("test")
    except Exception:
        return None


DEVICE = _device()
pytestmark = pytest.mark.skipif(DEVICE is None, reason=REASON)


def device_arch() -> str:
    major, minor = DEVICE.compute_capability
    number = min(max(major * 10 + minor, 75), 90)
    return f"sm_{number}"


_MODULES: dict[tuple[str, str, int], object] = {}


def compiled(case: Case, arch: str | None = None, opt_level: int = 2):
    arch = arch or device_arch()
    key = (case.name, arch, opt_level)
    if key not in _MODULES:
        _MODULES[key] = tensorc.compile(case.text, target="cuda", arch=arch,
                                        opt_level=opt_level)
    return _MODULES[key]


def check(case: Case, module, seed: int = 0, sizes: dict | None = None) -> None:
    reference = interp_module(case)
    rng = np.random.default_rng(seed)
    for name in case.functions:
        args = inputs(case, reference.functions[name], rng, sizes)
        assert_matches(module[name](*args), getattr(reference, name)(*args),
                       f"{case.name}.{name}")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case_agrees_with_the_interpreter(case: Case) -> None:
    check(case, compiled(case))


@pytest.mark.parametrize("name", ["affine", "softmax_symbolic", "matmul_epilogue", "mlp",
                                  "layer_norm", "scatter"])
def test_case_from_ptx_jit(name: str) -> None:
    case = CASES_BY_NAME[name]
    check(case, compiled(case, arch="sm_75"))  # not the device's arch: the driver JITs PTX


@pytest.mark.parametrize("name", ["mlp", "softmax_symbolic", "full_reductions"])
def test_case_unfused(name: str) -> None:
    case = CASES_BY_NAME[name]
    check(case, compiled(case, opt_level=0))


def test_larger_sizes() -> None:
    check(CASES_BY_NAME["matmul_epilogue"], compiled(CASES_BY_NAME["matmul_epilogue"]),
          sizes={"N": 1000, "K": 300, "M": 257})
    check(CASES_BY_NAME["softmax_symbolic"], compiled(CASES_BY_NAME["softmax_symbolic"]),
          sizes={"N": 300, "M": 5000})
    check(CASES_BY_NAME["affine"], compiled(CASES_BY_NAME["affine"]),
          sizes={"N": 3000, "M": 1001})
    check(CASES_BY_NAME["sum_columns"], compiled(CASES_BY_NAME["sum_columns"]),
          sizes={"N": 20000, "M": 70})


def test_device_arrays_in_place() -> None:
    from pycuda import gpuarray

    case = CASES_BY_NAME["mlp"]
    module = compiled(case)
    reference = interp_module(case)
    args = inputs(case, reference.functions["mlp"], np.random.default_rng(0))
    with DEVICE.activate():
        on_device = [gpuarray.to_gpu(a) for a in args]
    result = module.mlp(*on_device)
    assert isinstance(result, gpuarray.GPUArray)
    with DEVICE.activate():
        host = result.get()
    assert_matches(host, reference.mlp(*args))


@pytest.mark.parametrize("name", ["take", "take_along_axis", "scatter"])
def test_index_errors(name: str) -> None:
    case = CASES_BY_NAME[name]
    module = compiled(case)
    reference = interp_module(case)
    args = inputs(case, reference.functions["f"], np.random.default_rng(0))
    bad = args[1].copy()
    bad.reshape(-1)[-1] = 99
    with pytest.raises(IndexError) as expected:
        reference.f(args[0], bad)
    with pytest.raises(IndexError) as caught:
        module.f(args[0], bad)
    assert str(caught.value) == str(expected.value)


def test_empty_sizes() -> None:
    check(CASES_BY_NAME["affine"], compiled(CASES_BY_NAME["affine"]), sizes={"N": 0, "M": 3})
    check(CASES_BY_NAME["sum_rows"], compiled(CASES_BY_NAME["sum_rows"]),
          sizes={"N": 4, "M": 0})


def test_calls_from_many_threads() -> None:
    case = CASES_BY_NAME["matmul_epilogue"]
    module = compiled(case)
    reference = interp_module(case)
    args = inputs(case, reference.functions["f"], np.random.default_rng(0))
    want = reference.f(*args)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(5):
                assert_matches(module.f(*args), want)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[0]

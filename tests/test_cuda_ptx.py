"""The PTX of every corpus program (test_cuda_programs), of the examples and of random
programs passes NVIDIA's `ptxas` for sm_75, sm_80 and sm_90 (skipped, with the reason, only
where no ptxas can be found: PATH, CUDA_HOME, /usr/local/cuda, or the `nvidia-cuda-nvcc`
wheel); the PTX declares what each architecture needs; the cubin lands in the artifact."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import tensorc_runtime.cuda as cuda_runtime
from hypothesis import HealthCheck, given, settings
from progen import programs
from test_cuda_programs import CASES, ROOT, Case

from tensorc.codegen.cuda.backend import CudaBuild
from tensorc.codegen.cuda.emulator import EmulatedDevice, build_emulation_library
from tensorc.codegen.cuda.ptxas import PtxasError, assemble, find_ptxas
from tensorc.codegen.cuda.target import ptx_entries, ptx_version
from tensorc.driver import CompileOptions, Source, compile_to_ir

ARCHS = ("sm_75", "sm_80", "sm_90")
PTXAS = find_ptxas()
needs_ptxas = pytest.mark.skipif(
    PTXAS is None,
    reason="no ptxas found (PATH, CUDA_HOME, /usr/local/cuda, or pip install nvidia-cuda-nvcc)",
)
EXAMPLES = sorted((ROOT / "examples").glob("*.tc"))


def ptx_of(text: str, arch: str, opt_level: int = 2, filename: str = "case.tc") -> CudaBuild:
    source = Source(text, filename)
    module, _ = compile_to_ir(source, CompileOptions(opt_level=opt_level))
    return CudaBuild.create(module, text, opt_level, arch, use_ptxas=False)


def assert_assembles(ptx: str, arch: str, what: str) -> None:
    try:
        cubin = assemble(ptx, arch, PTXAS)
    except PtxasError as error:
        pytest.fail(f"{what} ({arch}): {error}")
    assert cubin[:4] == b"\x7fELF", f"{what}: ptxas did not write a cubin"


@needs_ptxas
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_corpus_ptx_assembles(case: Case, arch: str) -> None:
    build = ptx_of(case.text, arch)
    ptx = build.ptx()
    assert f".target {arch}" in ptx
    kernels = [launch.kernel for plan in build.plans for launch in plan.launches()]
    assert ptx_entries(ptx) == sorted(set(kernels), key=kernels.index)
    assert_assembles(ptx, arch, case.name)


@needs_ptxas
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_ptx_assembles(path: Path, arch: str) -> None:
    build = ptx_of(path.read_text(), arch, filename=str(path))
    assert_assembles(build.ptx(), arch, path.name)


@needs_ptxas
@pytest.mark.parametrize("case", [c for c in CASES if c.name in ("mlp", "softmax_symbolic",
                                                                  "scatter", "matmul_batched")],
                         ids=lambda c: c.name)
def test_unfused_ptx_assembles(case: Case) -> None:
    build = ptx_of(case.text, "sm_80", opt_level=0)
    assert_assembles(build.ptx(), "sm_80", f"{case.name} at -O0")


@pytest.mark.parametrize("arch,version", [("sm_75", 6.3), ("sm_80", 7.0), ("sm_90", 7.8)])
def test_ptx_version_is_new_enough_for_the_arch(arch: str, version: float) -> None:
    build = ptx_of("def f(x: f32[N]) -> f32[N] { return exp(x) }", arch)
    assert float(ptx_version(build.ptx()) or 0) >= version


SETTINGS = dict(deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@needs_ptxas
@settings(max_examples=60, **SETTINGS)
@given(program=programs())
def test_random_program_ptx_assembles(program) -> None:
    for arch in ARCHS:
        build = ptx_of(program.source, arch)
        assert_assembles(build.ptx(), arch, program.source)


@needs_ptxas
def test_artifact_embeds_a_cubin_for_its_arch(tmp_path: Path) -> None:
    build = ptx_of((ROOT / "examples" / "mlp.tc").read_text(), "sm_75")
    build.use_ptxas = True
    output = build.write_shared_object(tmp_path / "mlp.so")
    section = build.manifest["cuda"]["cubin"]
    assert section["arch"] == "sm_75" and section["bytes"] > 0
    listing = subprocess.run(["readelf", "-S", str(output)], capture_output=True, text=True)
    if listing.returncode == 0:
        assert ".tensorc_cubin" in listing.stdout and ".tensorc_ptx" in listing.stdout
    library = build_emulation_library(build.module, tmp_path / "emu.so")
    kinds = []

    class Recording(EmulatedDevice):
        def load_module(self, image, kind):
            kinds.append((kind, image[:4]))
            return super().load_module(image, kind)

    cuda_runtime.load(output, device=Recording(library, compute_capability=(7, 5)))
    cuda_runtime.load(output, device=Recording(library, compute_capability=(8, 6)))
    assert kinds == [("cubin", b"\x7fELF"), ("ptx", b"//\n/")]  # the cubin on its own arch


def test_malformed_ptx_is_reported() -> None:
    if PTXAS is None:
        pytest.skip("no ptxas found")
    with pytest.raises(PtxasError, match="ptxas --gpu-name sm_80 failed"):
        assemble(".version 7.0\n.target sm_80\n.address_size 64\nnonsense;\n", "sm_80", PTXAS)

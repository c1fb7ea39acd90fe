"""The CUDA artifact without a GPU: launch plans against the IR's shapes (grids and blocks for
given sizes, buffers, reuse slots, checks, copies), the manifest and its sections, loading
without pycuda or a GPU (a clear error), `tensorc.compile(target="cuda")`, the CLI, and the
runtime's loader (architecture choice, corrupted plans) on the emulator device."""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tensorc_runtime
import tensorc_runtime.cuda as cuda_runtime
from tensorc_runtime.elf import read_section
from test_cuda_programs import CASES_BY_NAME, ROOT

from tensorc.codegen.artifact import seal_checksum
from tensorc.codegen.cuda.backend import NOT_CALLABLE_CODE, CudaBuild
from tensorc.codegen.cuda.emulator import EmulatedDevice, build_emulation_library
from tensorc.codegen.cuda.target import check_arch, ptx_entries
from tensorc.driver import CompileOptions, Source, compile_to_ir
from tensorc.ir.dims import DimExpr

RUNTIME = ROOT / "runtime"


def build_of(text: str, opt_level: int = 2, arch: str = "sm_80") -> CudaBuild:
    source = Source(textwrap.dedent(text), "plan.tc")
    module, _ = compile_to_ir(source, CompileOptions(opt_level=opt_level))
    return CudaBuild.create(module, source.text, opt_level, arch, use_ptxas=False)


def plan_of(text: str, function: str = "f", opt_level: int = 2):
    build = build_of(text, opt_level)
    return next(plan for plan in build.plans if plan.name == function), build


def evaluate(expr: DimExpr, env: dict[str, int]) -> int:
    return DimExpr.of(expr).evaluate(env)


def shapes(plan, env):
    return [(launch.kernel.split("_k", 1)[1], evaluate(launch.grid, env),
             evaluate(launch.block, env)) for launch in plan.launches()]


# ----- grids and blocks against the IR's shapes --------------------------------------------


def test_pointwise_grid_covers_the_domain_four_lanes_a_thread() -> None:
    plan, _ = plan_of("def f(x: f32[N, M], w: f32[M]) -> f32[N, M] { return x * w }")
    assert shapes(plan, {"N": 1000, "M": 12}) == [("0_pointwise", 12, 256)]  # 12000 / 1024
    assert shapes(plan, {"N": 1000, "M": 1}) == [("0_pointwise", 1, 256)]
    assert shapes(plan, {"N": 10**7, "M": 10}) == [("0_pointwise", 8192, 256)]  # capped
    assert shapes(plan, {"N": 0, "M": 10}) == [("0_pointwise", 0, 256)]  # skipped


def test_f64_pointwise_uses_two_lanes() -> None:
    plan, _ = plan_of("def f(x: f64[N]) -> f64[N] { return x * 2.0 }")
    assert shapes(plan, {"N": 1000}) == [("0_pointwise", 2, 256)]  # 1000 / 512


def test_static_rows_are_a_warp_each() -> None:
    plan, _ = plan_of("def f(x: f32[N, 10]) -> f32[N, 10] { return softmax(x, axis=-1) }")
    assert shapes(plan, {"N": 1000}) == [("0_row", 125, 256)]  # one kernel, 8 rows a block


def running(plan, env):
    """The launches a call with `env` makes (an empty grid is skipped)."""
    return [shape for shape in shapes(plan, env) if shape[1] > 0]


def test_symbolic_rows_are_a_block_each_sized_by_the_row() -> None:
    plan, _ = plan_of("def f(x: f32[N, M]) -> f32[N] { return sum(x, axis=1) }")
    assert running(plan, {"N": 1000, "M": 300}) == [("0_row", 1000, 256)]
    assert running(plan, {"N": 1000, "M": 40}) == [("0_row", 1000, 64)]
    assert running(plan, {"N": 1000, "M": 0}) == [("0_row", 1000, 32)]
    assert running(plan, {"N": 20000, "M": 3}) == [("0_row", 8192, 32)]


def test_long_rows_of_few_points_are_split() -> None:
    plan, _ = plan_of("def f(x: f32[N, M]) -> f32[N] { return sum(x, axis=1) }")
    # S = min(ceil(100000 / 1024), ceil(32768 / 2)) = 98 chunks: a warp per (row, chunk)
    assert shapes(plan, {"N": 2, "M": 100000}) == [("0_row", 0, 256), ("1_partial", 25, 256),
                                                   ("2_finish", 1, 256)]
    full, _ = plan_of("def f(x: f32[N]) -> f32 { return sum(x) }")
    # S = ceil(10^7 / 1024) = 9766 chunks, 8 a block
    assert running(full, {"N": 10**7}) == [("1_partial", 1221, 256), ("2_finish", 1, 256)]
    assert running(full, {"N": 1000}) == [("0_row", 1, 256)]
    static, _ = plan_of("def f(x: f32[N, 10]) -> f32[N] { return sum(x, axis=1) }")
    assert [launch.kernel for launch in static.launches()] == ["tensorc_f_k0_row"]


def test_layer_norm_is_one_row_kernel() -> None:
    plan, build = plan_of("""
        def f(x: f32[N, M], g: f32[M], b: f32[M]) -> f32[N, M] { return layer_norm(x, g, b) }
    """)
    assert shapes(plan, {"N": 64, "M": 1024}) == [("0_row", 64, 256)]
    kernel_ops = [op for op in build.module.functions[0].body.ops if op.name == "kernel.generic"]
    assert len(kernel_ops) == 2  # two kernels in the IR, one on the GPU


def test_column_reduction_takes_32_columns_a_block() -> None:
    plan, _ = plan_of("def f(x: f32[N, M]) -> f32[M] { return sum(x, axis=0) }")
    assert running(plan, {"N": 1000, "M": 100}) == [("0_column", 4, 256)]
    # a bias gradient over a large batch: 98 chunks of 32 x 8-thread column blocks
    assert running(plan, {"N": 100000, "M": 10}) == [("1_partial", 98, 256),
                                                     ("2_finish", 1, 256)]


def test_matmul_grid_is_one_block_per_64x64_tile() -> None:
    plan, _ = plan_of("""
        def f(x: f32[N, K], w: f32[K, M], b: f32[M]) -> f32[N, M] { return relu(x @ w + b) }
    """)
    assert shapes(plan, {"N": 1000, "K": 64, "M": 100}) == [("0_matmul", 16 * 2, 256)]
    batched, _ = plan_of("def f(a: f32[B, N, K], b: f32[B, K, M]) -> f32[B, N, M] { return a @ b }")
    assert shapes(batched, {"B": 3, "N": 65, "K": 8, "M": 64}) == [("0_matmul", 3 * 2 * 1, 256)]


def test_gathers_cover_their_indices() -> None:
    plan, _ = plan_of("def f(e: f32[V, D], i: i32[N]) -> f32[N, D] { return take(e, i, 0) }")
    assert shapes(plan, {"V": 50, "D": 16, "N": 1000}) == [("0_take", 63, 256)]  # 16000 / 256
    assert shapes(plan, {"V": 50, "D": 0, "N": 1000}) == [("0_take", 4, 256)]  # still checks


# ----- buffers, slots, steps --------------------------------------------------------------------


def _live_ranges(plan) -> dict[int, tuple[int, int]]:
    ranges: dict[int, tuple[int, int]] = {}
    for position, step in enumerate(plan.steps):
        if hasattr(step, "params"):
            ids = [p["buffer"] for p in step.params if "buffer" in p]
        elif step["kind"] == "copy":
            ids = [step["src"], step["dst"]]
        else:
            ids = [step["buffer"]]
        for buffer_id in ids:
            buffer = plan.buffers[buffer_id]
            while buffer.role == "alias":
                buffer = plan.buffers[buffer.alias_of]
            first, _ = ranges.get(buffer.id, (position, position))
            ranges[buffer.id] = (first, position)
    for check in plan.checks:
        first, _ = ranges[check.indices]
        ranges[check.indices] = (first, len(plan.steps))
    return ranges


@pytest.mark.parametrize("name", ["mlp", "softmax_symbolic", "scatter", "cross_entropy",
                                  "concat_reshape", "constants", "var_logsumexp"])
def test_buffers_match_the_ir_and_slots_never_overlap(name: str) -> None:
    case = CASES_BY_NAME[name]
    build = build_of(case.text)
    for function, plan in zip(build.module.functions, build.plans):
        assert plan.symbols == list(function.symbols)
        inputs = [b for b in plan.buffers if b.role == "input"]
        outputs = [b for b in plan.buffers if b.role == "output"]
        assert [b.type for b in inputs] == [a.type for a in function.args]
        assert [b.type for b in outputs] == list(function.function_type.results)
        assert [b.index for b in outputs] == list(range(len(outputs)))
        ranges = _live_ranges(plan)
        by_slot: dict[int, list[int]] = {}
        for buffer in plan.buffers:
            if buffer.role == "temporary" and buffer.id in ranges:
                by_slot.setdefault(buffer.slot, []).append(buffer.id)
        for members in by_slot.values():
            spans = sorted(ranges[m] for m in members)
            for (_, end), (start, _) in zip(spans, spans[1:]):
                assert end < start, f"{name}.{plan.name}: slot shared by live buffers"
        for launch in plan.launches():
            symbols = [p["symbol"] for p in launch.params if "symbol" in p]
            assert symbols == plan.symbols


def test_checks_record_the_op_the_axis_and_the_size() -> None:
    plan, _ = plan_of(
        "def f(e: f32[V, D], i: i32[N]) -> f32[V, D] { return grad(sum(take(e, i, 0)), e) }"
    )
    assert [c.to_dict() for c in plan.checks] == [
        {"op": "scatter_add", "indices": 1, "axis": 0, "size": "V"}
    ]
    kinds = [s["kind"] if isinstance(s, dict) else "launch" for s in plan.steps]
    assert kinds[-2:] == ["zero", "launch"]  # the scatter's result is zeroed first
    assert plan.launches()[-1].params[-1] == {"error": 0}


def test_returned_views_are_copied() -> None:
    plan, _ = plan_of("""
        def f(x: f32[N], y: f32[N, 3]) -> (f32[3, N], f32[N], f32[2]) {
            return reshape(y, [3, N]), x, cast(arange(2), f32) + 1.0
        }""")
    copies = [s for s in plan.steps if isinstance(s, dict) and s["kind"] == "copy"]
    roles = [(plan.buffers[c["src"]].role, plan.buffers[c["dst"]].role) for c in copies]
    assert sorted(roles) == [("constant", "output"), ("input", "output"), ("input", "output")]
    constant = next(b for b in plan.buffers if b.role == "constant")
    assert constant.to_dict()["data"] == "AACAPwAAAEA="  # [1.0, 2.0] little-endian f32


def test_the_same_module_gives_the_same_ptx_and_plans() -> None:
    text = CASES_BY_NAME["mlp"].text
    first, second = build_of(text), build_of(text)
    assert first.ptx() == second.ptx()
    assert [p.to_dict() for p in first.plans] == [p.to_dict() for p in second.plans]


def test_unsupported_arch_is_refused() -> None:
    with pytest.raises(ValueError, match="sm_75 .. sm_90"):
        check_arch("sm_70")
    with pytest.raises(ValueError):
        build_of("def f(x: f32[N]) -> f32[N] { return x }", arch="sm_100")
    assert check_arch("sm_86") == "sm_86"


# ----- the artifact -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> tuple[Path, CudaBuild]:
    build = build_of(CASES_BY_NAME["mlp"].text)
    path = tmp_path_factory.mktemp("cuda") / "mlp.so"
    build.write_shared_object(path)
    return path, build


def test_manifest_describes_the_sections_and_the_plans(artifact) -> None:
    path, build = artifact
    manifest = tensorc_runtime.elf.read_manifest(path)
    assert manifest["target"] == "cuda" and manifest["arch"] == "sm_80"
    section = manifest["cuda"]
    ptx = read_section(path, section["ptx"]["section"])
    assert ptx is not None and ptx.endswith(b"\0")
    assert hashlib.sha256(ptx[:-1]).hexdigest() == section["ptx"]["sha256"]
    assert section["ptx"]["version"] == "7.0"
    assert section["cubin"] is None  # built without ptxas
    assert section["kernels"] == ptx_entries(ptx.decode()[:-1])
    assert set(section["functions"]) == {"mlp", "predict", "train_step"}
    plan = section["functions"]["mlp"]
    assert plan["symbols"] == ["N", "H"]
    assert json.loads(json.dumps(plan)) == build.plans[0].to_dict()


def test_entry_points_report_that_the_runtime_runs_them(artifact) -> None:
    path, _ = artifact
    library = ctypes.CDLL(str(path))
    error = tensorc_runtime.native.TensorcError()
    entry = library.tensorc_mlp
    entry.restype = ctypes.c_int32
    assert entry(None, None, None, None) == NOT_CALLABLE_CODE
    assert entry(None, None, None, ctypes.byref(error)) == NOT_CALLABLE_CODE
    assert error.code == NOT_CALLABLE_CODE
    assert b"run by tensorc_runtime" in error.message


def _run_python(code: str, extra_path: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    paths = [str(RUNTIME), str(ROOT)] + ([str(extra_path)] if extra_path else [])
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, timeout=300)


def test_loading_without_pycuda_says_so(artifact) -> None:
    path, _ = artifact
    result = _run_python(f"""
        import sys
        sys.modules["pycuda"] = None  # as if it were not installed
        import tensorc_runtime
        try:
            tensorc_runtime.load({str(path)!r})
        except tensorc_runtime.ArtifactError as error:
            print(type(error).__name__, "|", error)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("CudaUnavailableError |")
    assert "loading it needs pycuda and an NVIDIA GPU: pycuda is not installed" in result.stdout


def test_loading_without_a_gpu_says_so(artifact, tmp_path: Path) -> None:
    path, _ = artifact
    fake = tmp_path / "fake" / "pycuda"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "driver.py").write_text(
        "def init():\n    raise RuntimeError('cuInit failed: no CUDA-capable device is detected')\n"
    )
    result = _run_python(f"""
        import tensorc_runtime
        try:
            tensorc_runtime.load({str(path)!r})
        except tensorc_runtime.ArtifactError as error:
            print(error)
    """, tmp_path / "fake")
    assert result.returncode == 0, result.stderr
    assert "no usable NVIDIA GPU (RuntimeError: cuInit failed" in result.stdout


def test_compile_for_cuda_raises_the_clear_error_at_load(tmp_path: Path) -> None:
    result = _run_python(f"""
        import os, sys
        os.environ["TENSORC_CACHE_DIR"] = {str(tmp_path)!r}
        sys.modules["pycuda"] = None
        import tensorc, tensorc_runtime
        try:
            tensorc.compile("def f(x: f32[N]) -> f32[N] {{ return x + 1.0 }}", target="cuda")
        except tensorc_runtime.ArtifactError as error:
            print(type(error).__name__, "|", error)
        try:
            tensorc.compile("def f(x: f32[N]) -> f32[N] {{ return x }}", target="cuda",
                            arch="sm_60")
        except ValueError as error:
            print("ValueError |", error)
    """)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("CudaUnavailableError |") and "pycuda is not installed" in lines[0]
    assert lines[1].startswith("ValueError | unsupported CUDA architecture 'sm_60'")
    assert list((tmp_path / "artifacts").glob("*.so")), "the artifact is built and cached"


def test_runtime_loader_picks_the_image_for_the_device(artifact, tmp_path: Path) -> None:
    path, build = artifact
    library = build_emulation_library(build.module, tmp_path / "emu.so")
    images = []

    class Recording(EmulatedDevice):
        def load_module(self, image, kind):
            images.append(kind)
            return super().load_module(image, kind)

    cuda_runtime.load(path, device=Recording(library, compute_capability=(9, 0)))
    assert images == ["ptx"]  # no cubin: the PTX, JIT-compiled for a newer GPU
    with pytest.raises(tensorc_runtime.ArtifactError, match="compile it with --arch=sm_75"):
        cuda_runtime.load(path, device=Recording(library, compute_capability=(7, 5)))


def test_runtime_refuses_a_corrupted_ptx_section(artifact, tmp_path: Path) -> None:
    path, build = artifact
    data = bytearray(path.read_bytes())
    ptx = build.ptx().encode()
    start = bytes(data).index(ptx[:200])
    data[start + 100] ^= 0x01
    corrupted = tmp_path / "corrupted.so"
    corrupted.write_bytes(bytes(data))
    library = build_emulation_library(build.module, tmp_path / "emu.so")
    with pytest.raises(tensorc_runtime.ArtifactError, match="do not match the manifest's file_sha"):
        cuda_runtime.load(corrupted, device=EmulatedDevice(library))
    # with the whole file's checksum made to fit, the section's own checksum still catches it
    digest = tensorc_runtime.elf.read_manifest(path)["file_sha256"].encode()
    resealed = seal_checksum(bytes(data).replace(digest, b"0" * len(digest)))
    corrupted.write_bytes(resealed)
    with pytest.raises(tensorc_runtime.ArtifactError, match="fails its checksum"):
        cuda_runtime.load(corrupted, device=EmulatedDevice(library))


def test_runtime_refuses_a_corrupted_plan(artifact, tmp_path: Path) -> None:
    path, build = artifact
    manifest = json.loads(json.dumps(tensorc_runtime.elf.read_manifest(path)))
    manifest["cuda"]["functions"]["mlp"]["steps"][0]["params"][0] = {"buffer": 999}
    library = build_emulation_library(build.module, tmp_path / "emu.so")
    with pytest.raises(tensorc_runtime.ArtifactError, match="unknown buffers \\[999\\]"):
        cuda_runtime.load(path, manifest=manifest, device=EmulatedDevice(library))
    del manifest["cuda"]["functions"]["mlp"]
    with pytest.raises(tensorc_runtime.ArtifactError, match="no launch plan for 'mlp'"):
        cuda_runtime.load(path, manifest=manifest, device=EmulatedDevice(library))


# ----- the command line -------------------------------------------------------------------------


def _tensorc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tensorc", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=600)


def test_cli_emits_ptx_to_stdout_and_artifacts(tmp_path: Path) -> None:
    source = tmp_path / "m.tc"
    source.write_text("def f(x: f32[N, M]) -> f32[N] { return max(x, axis=1) }\n")
    ptx = _tensorc("compile", str(source), "--target=cuda", "--arch=sm_90", "--emit=ptx",
                   "-o", "-")
    assert ptx.returncode == 0, ptx.stderr
    assert ".target sm_90" in ptx.stdout and ".entry tensorc_f_k0_row" in ptx.stdout
    nvvm = _tensorc("compile", str(source), "--target=cuda", "--emit=llvm", "-o",
                    str(tmp_path / "m.ll"))
    assert nvvm.returncode == 0 and "nvvm.annotations" in (tmp_path / "m.ll").read_text()
    built = _tensorc("compile", str(source), "--target=cuda", "-o", str(tmp_path / "m.so"))
    assert built.returncode == 0, built.stderr
    inspected = _tensorc("inspect", str(tmp_path / "m.so"))
    assert "target:       cuda" in inspected.stdout and "arch:         sm_80" in inspected.stdout


@pytest.mark.parametrize("args,message", [
    (["--emit=asm"], "--target=cuda emits so, ptx, llvm or ir"),
    (["--arch=sm_61"], "unsupported CUDA architecture 'sm_61'"),
    (["--emit=so", "-o", "-"], "-o - writes text to stdout"),
])
def test_cli_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    source = tmp_path / "m.tc"
    source.write_text("def f(x: f32[N]) -> f32[N] { return x }\n")
    output = [] if "-o" in args else ["-o", str(tmp_path / "out")]
    result = _tensorc("compile", str(source), "--target=cuda", *args, *output)
    assert result.returncode == 2 and message in result.stderr

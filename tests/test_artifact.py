"""The artifact container, its loader and the CLI around them (docs/abi.md, SPEC §3-§5).

The artifacts here are built from small hand-written LLVM modules that follow the C ABI:

    addone(x: f32[N]) -> f32[N]                          x + 1 (built with llvmlite.ir)
    fail(x: f32[N]) -> f32[N]                            always returns 1 (an index error)
    head(x: f32[N]) -> f32[N - 1]                        x[:-1], with the constraint 1 <= N
    affine(x: f64[N, 2], b: f64[2], s: f64) -> (y: f64[N, 2], count: i64)   x*s + b, N
    odd() -> i64                                         returns the unknown code 42
    halve(x: bf16[N]) -> bf16[N]                         (manifest only: NumPy has no bf16)
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import timeit
from pathlib import Path

import llvmlite.ir as ir
import numpy as np
import pytest
import tensorc_runtime
from tensorc_runtime import ArtifactError, Signature
from tensorc_runtime.cpu import AARCH64_FEATURES, X86_FEATURES, host_cpu_features
from tensorc_runtime.elf import read_manifest
from tensorc_runtime.native import NativeFunction, NativeModule

from tensorc.cli import main
from tensorc.codegen import artifact
from tensorc.codegen.artifact import (
    BuildError,
    build_shared_object,
    host_target,
    make_manifest,
)
from tensorc.codegen.header import emit_c_header

ROOT = Path(__file__).resolve().parent.parent
THREAD_POOL_C = ROOT / "tensorc" / "codegen" / "support" / "threadpool.c"
SOURCE = "def addone(x: f32[N]) -> f32[N]:\n    return x + 1\n"
FAIL_MESSAGE = "take: index 7 is out of range for axis 0 of size 3"


# -- hand-written modules --------------------------------------------------------------------


def addone_module() -> ir.Module:
    """``tensorc_addone``: y[i] = x[i] + 1 for i < dims[0], written with llvmlite.ir."""
    module = ir.Module(name="addone")
    ptr, i32, i64, f32 = ir.PointerType(), ir.IntType(32), ir.IntType(64), ir.FloatType()
    function = ir.Function(module, ir.FunctionType(i32, [ptr] * 4), name="tensorc_addone")
    args, results, dims, _ = function.args
    entry = function.append_basic_block("entry")
    loop = function.append_basic_block("loop")
    done = function.append_basic_block("done")
    builder = ir.IRBuilder(entry)
    x = builder.load(args, typ=ptr)
    y = builder.load(results, typ=ptr)
    n = builder.load(dims, typ=i64)
    builder.cbranch(builder.icmp_signed(">", n, i64(0)), loop, done)
    builder.position_at_end(loop)
    index = builder.phi(i64)
    index.add_incoming(i64(0), entry)
    value = builder.load(builder.gep(x, [index], inbounds=True, source_etype=f32), typ=f32)
    target = builder.gep(y, [index], inbounds=True, source_etype=f32)
    builder.store(builder.fadd(value, f32(1.0)), target)
    following = builder.add(index, i64(1))
    index.add_incoming(following, loop)
    builder.cbranch(builder.icmp_signed("<", following, n), loop, done)
    builder.position_at_end(done)
    builder.ret(i32(0))
    return module


def _c_string(text: str) -> tuple[int, str]:
    data = text.encode() + b"\0"
    return len(data), "".join(f"\\{byte:02X}" for byte in data)


MESSAGE_LENGTH, MESSAGE_IR = _c_string(FAIL_MESSAGE)
OTHER_FUNCTIONS_IR = f"""
@fail_message = private constant [{MESSAGE_LENGTH} x i8] c"{MESSAGE_IR}"
declare void @llvm.memcpy.p0.p0.i64(ptr, ptr, i64, i1)

define i32 @tensorc_fail(ptr %args, ptr %results, ptr %dims, ptr %error) {{
entry:
  %no_error = icmp eq ptr %error, null
  br i1 %no_error, label %done, label %fill
fill:
  store i32 1, ptr %error
  %op = getelementptr inbounds i8, ptr %error, i64 4
  store i32 3, ptr %op
  %detail = getelementptr inbounds i8, ptr %error, i64 8
  store i64 7, ptr %detail
  %message = getelementptr inbounds i8, ptr %error, i64 40
  call void @llvm.memcpy.p0.p0.i64(ptr %message, ptr @fail_message, i64 {MESSAGE_LENGTH}, i1 0)
  br label %done
done:
  ret i32 1
}}

define i32 @tensorc_odd(ptr %args, ptr %results, ptr %dims, ptr %error) {{
  ret i32 42
}}

define i32 @tensorc_head(ptr %args, ptr %results, ptr %dims, ptr %error) {{
entry:
  %x = load ptr, ptr %args
  %y = load ptr, ptr %results
  %n = load i64, ptr %dims
  %m = sub i64 %n, 1
  %bytes = mul i64 %m, 4
  call void @llvm.memcpy.p0.p0.i64(ptr %y, ptr %x, i64 %bytes, i1 0)
  ret i32 0
}}

define i32 @tensorc_affine(ptr %args, ptr %results, ptr %dims, ptr %error) {{
entry:
  %x = load ptr, ptr %args
  %b_slot = getelementptr inbounds ptr, ptr %args, i64 1
  %b = load ptr, ptr %b_slot
  %s_slot = getelementptr inbounds ptr, ptr %args, i64 2
  %s_ptr = load ptr, ptr %s_slot
  %s = load double, ptr %s_ptr
  %y = load ptr, ptr %results
  %count_slot = getelementptr inbounds ptr, ptr %results, i64 1
  %count = load ptr, ptr %count_slot
  %n = load i64, ptr %dims
  store i64 %n, ptr %count
  %total = mul i64 %n, 2
  %empty = icmp sle i64 %total, 0
  br i1 %empty, label %done, label %loop
loop:
  %i = phi i64 [0, %entry], [%next, %loop]
  %xi_ptr = getelementptr inbounds double, ptr %x, i64 %i
  %xi = load double, ptr %xi_ptr
  %column = and i64 %i, 1
  %bi_ptr = getelementptr inbounds double, ptr %b, i64 %column
  %bi = load double, ptr %bi_ptr
  %scaled = fmul double %xi, %s
  %sum = fadd double %scaled, %bi
  %yi_ptr = getelementptr inbounds double, ptr %y, i64 %i
  store double %sum, ptr %yi_ptr
  %next = add i64 %i, 1
  %more = icmp slt i64 %next, %total
  br i1 %more, label %loop, label %done
done:
  ret i32 0
}}
"""


def _spec(name: str, dtype: str, shape: list[str]) -> dict:
    return {"name": name, "dtype": dtype, "shape": shape}


SIGNATURES = [
    {
        "name": "addone",
        "params": [_spec("x", "f32", ["N"])],
        "results": [_spec("result0", "f32", ["N"])],
    },
    {
        "name": "fail",
        "params": [_spec("x", "f32", ["N"])],
        "results": [_spec("result0", "f32", ["N"])],
    },
    {
        "name": "head",
        "params": [_spec("x", "f32", ["N"])],
        "results": [_spec("result0", "f32", ["N - 1"])],
        "constraints": [
            {
                "kind": "le",
                "lhs": "1",
                "rhs": "N",
                "error": "ValueError",
                "message": "head(): x must not be empty",
            }
        ],
    },
    {
        "name": "affine",
        "params": [_spec("x", "f64", ["N", "2"]), _spec("b", "f64", ["2"]), _spec("s", "f64", [])],
        "results": [_spec("y", "f64", ["N", "2"]), _spec("count", "i64", [])],
    },
    {"name": "odd", "params": [], "results": [_spec("result0", "i64", [])]},
    {
        "name": "halve",
        "params": [_spec("x", "bf16", ["N"])],
        "results": [_spec("result0", "bf16", ["N"])],
        "symbol": "tensorc_addone",
    },
]


def build(output: Path, **manifest_changes: object) -> Path:
    target = host_target()
    manifest = make_manifest(
        functions=SIGNATURES, source_text=SOURCE, target=target, options={"opt_level": 2}
    )
    manifest.update(manifest_changes)
    build_shared_object(
        [addone_module(), OTHER_FUNCTIONS_IR],
        manifest,
        output,
        extra_c_sources=[THREAD_POOL_C],
        target=target,
    )
    return output


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("artifact") / "model.so")


@pytest.fixture(scope="module")
def module(built: Path) -> NativeModule:
    return tensorc_runtime.load(built)


def patched_copy(
    source: Path, destination: Path, old: bytes, new: bytes, *, reseal: bool = True
) -> Path:
    """A copy of ``source`` with ``old`` replaced by ``new`` (same length) in the manifest, and
    (``reseal``) its checksum recomputed, as a compiler writing that manifest would have."""
    assert len(old) == len(new)
    data = source.read_bytes()
    assert data.count(old) == 1, old
    data = data.replace(old, new)
    if reseal:
        digest = read_manifest(source)["file_sha256"].encode()
        data = artifact.seal_checksum(data.replace(digest, b"0" * len(digest)))
    destination.write_bytes(data)
    return destination


# -- building --------------------------------------------------------------------------------


def test_manifest_fields(built: Path) -> None:
    manifest = read_manifest(built)
    assert manifest["format"] == "tensorc-artifact"
    assert manifest["format_version"] == 3
    assert manifest["target"] == "cpu"
    assert manifest["triple"] == host_target().triple
    assert manifest["arch"] is None
    assert manifest["source_hash"].startswith("sha256:")
    assert manifest["options"] == {"opt_level": 2}
    assert manifest["cpu_features"] == sorted(manifest["cpu_features"])
    functions = {entry["name"]: entry for entry in manifest["functions"]}
    assert functions["affine"]["symbol"] == "tensorc_affine"
    assert functions["affine"]["symbols"] == ["N"]
    assert functions["head"]["constraints"][0]["kind"] == "le"


def test_manifest_is_also_an_exported_symbol(built: Path) -> None:
    library = ctypes.CDLL(str(built))
    first_char = ctypes.c_char.in_dll(library, "__tensorc_manifest")
    exported = ctypes.string_at(ctypes.addressof(first_char))
    assert json.loads(exported) == read_manifest(built)


def test_build_is_deterministic(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = build(tmp_path / "a" / "model.so")
    second = build(tmp_path / "b" / "model.so")
    assert first.read_bytes() == second.read_bytes()


def test_artifacts_name_themselves_not_the_scratch_path(tmp_path: Path) -> None:
    """The link happens in a scratch folder; nothing of its path may reach the artifact (gold,
    tried as a faster linker, put it in its version table)."""
    data = build(tmp_path / "model.so").read_bytes()
    assert b"tensorc-link-" not in data


def test_failed_link_leaves_nothing(tmp_path: Path) -> None:
    output = tmp_path / "model.so"
    target = host_target()
    manifest = make_manifest(functions=SIGNATURES[:1], source_text=SOURCE, target=target)
    with pytest.raises(BuildError, match="linking model.so failed"):
        build_shared_object(
            addone_module(), manifest, output, extra_link_args=["-ltensorc_no_such_library"]
        )
    assert list(tmp_path.iterdir()) == []


def test_failed_build_keeps_the_previous_output(tmp_path: Path) -> None:
    output = tmp_path / "model.so"
    output.write_bytes(b"previous")
    manifest = make_manifest(functions=SIGNATURES[:1], source_text=SOURCE, target=host_target())
    undefined = (
        "declare i32 @missing()\n"
        "define i32 @tensorc_addone(ptr %a, ptr %r, ptr %d, ptr %e) {\n"
        "  %v = call i32 @missing()\n  ret i32 %v\n}\n"
    )
    with pytest.raises(BuildError):
        build_shared_object(undefined, manifest, output)
    with pytest.raises(BuildError, match="invalid LLVM IR"):
        build_shared_object("define i32 @broken(", manifest, output)
    assert output.read_bytes() == b"previous"
    assert [path.name for path in tmp_path.iterdir()] == ["model.so"]


def test_target_levels_and_features() -> None:
    level = host_target("x86-64-v3")
    assert level.cpu == "x86-64-v3"
    if level.arch == "x86_64":
        assert {"avx2", "fma", "f16c"} <= set(level.required_features)
        assert "avx512f" not in level.required_features
    assert host_target("generic").required_features == ()
    with pytest.raises(ValueError, match="name the features"):
        host_target("skylake")
    host = host_target()
    assert not set(host.required_features) & artifact.X86_DISABLED_FEATURES
    assert "-aes" in host.features.split(",") or host.arch != "x86_64"


def test_recorded_features_are_detectable_by_the_runtime() -> None:
    assert artifact.X86_RECORDED_FEATURES <= set(X86_FEATURES)
    assert artifact.AARCH64_RECORDED_FEATURES <= set(AARCH64_FEATURES)
    detected = host_cpu_features()
    if detected is None:
        pytest.skip("this platform's CPU features cannot be read")
    # LLVM's view of this CPU (cpuid) and the runtime's (/proc/cpuinfo) agree.
    assert set(host_target().required_features) <= detected


# -- loading and calling ---------------------------------------------------------------------


def test_module_api(module: NativeModule, built: Path) -> None:
    assert list(module.functions) == ["addone", "fail", "head", "affine", "odd", "halve"]
    assert isinstance(module.functions["addone"], Signature)
    assert str(module.functions["addone"]) == "addone(x: f32[N]) -> f32[N]"
    assert module.target == "cpu"
    assert module.manifest["format_version"] == 3
    assert isinstance(module.addone, NativeFunction)
    assert module["addone"] is module.addone
    assert "affine" in module and "nope" not in module
    assert "model.so" in repr(module) and "addone" in repr(module)
    assert "tensorc_addone" in repr(module.addone)
    assert "addone" in dir(module)
    with pytest.raises(AttributeError, match="has no function 'nope'"):
        _ = module.nope
    with pytest.raises(KeyError, match="nope"):
        _ = module["nope"]


def test_addone(module: NativeModule) -> None:
    x = np.arange(8, dtype=np.float32)
    result = module.addone(x)
    assert result.dtype == np.float32 and result.shape == (8,)
    np.testing.assert_array_equal(result, x + 1)
    assert not np.shares_memory(result, x)
    np.testing.assert_array_equal(module.addone(x=x), x + 1)


@pytest.mark.parametrize(
    "x",
    [
        np.arange(16, dtype=np.float32)[::2],  # strided
        np.arange(8, dtype=np.int16),  # safely cast
        np.arange(8, dtype=np.dtype(">f4")),  # non-native byte order
        np.zeros(0, dtype=np.float32),
        np.ones(5000, dtype=np.float32),
        np.frombuffer(np.arange(4, dtype=np.float32).tobytes(), dtype=np.float32),  # read-only
    ],
    ids=["strided", "int16", "big-endian", "empty", "large", "read-only"],
)
def test_addone_arguments_that_need_conversion(module: NativeModule, x: np.ndarray) -> None:
    result = module.addone(x)
    np.testing.assert_array_equal(result, x.astype(np.float32) + 1)
    assert result.dtype == np.float32


def test_large_results_are_aligned(module: NativeModule) -> None:
    for size in (1024, 1025, 4099, 100_000):
        result = module.addone(np.ones(size, dtype=np.float32))
        assert result.ctypes.data % 64 == 0
        assert result.flags.c_contiguous and result.flags.writeable


def test_argument_errors_match_the_signature(module: NativeModule) -> None:
    with pytest.raises(TypeError, match="expects f32, got float64"):
        module.addone(np.ones(3))
    with pytest.raises(ValueError, match="expects a 1-d array"):
        module.addone(np.ones((2, 2), dtype=np.float32))
    with pytest.raises(TypeError, match="takes 1 argument"):
        module.addone()
    with pytest.raises(TypeError, match="unexpected keyword argument 'y'"):
        module.addone(y=np.ones(3, dtype=np.float32))
    with pytest.raises(TypeError, match="expects f32\\[N\\], got list"):
        module.addone([1.0, 2.0])


def test_native_index_error_carries_the_message(module: NativeModule) -> None:
    with pytest.raises(IndexError, match=FAIL_MESSAGE):
        module.fail(np.ones(3, dtype=np.float32))
    with pytest.raises(IndexError, match=FAIL_MESSAGE):
        module.fail(x=np.ones(3, dtype=np.float32))  # the general path


def test_result_shape_expression_and_constraint(module: NativeModule) -> None:
    x = np.arange(5, dtype=np.float32)
    np.testing.assert_array_equal(module.head(x), x[:-1])
    assert module.head(x[:1]).shape == (0,)
    with pytest.raises(ValueError, match=r"x must not be empty \(N=0\)"):
        module.head(np.zeros(0, dtype=np.float32))


def test_several_results_scalars_and_static_sizes(module: NativeModule) -> None:
    x = np.arange(6.0).reshape(3, 2)
    b = np.array([10.0, 20.0])
    y, count = module.affine(x, b, 0.5)
    np.testing.assert_array_equal(y, x * 0.5 + b)
    assert count.shape == () and count.dtype == np.int64 and int(count) == 3
    y2, count2 = module.affine(x, b, np.float64(0.5))
    y3, _ = module.affine(x, b, np.array(0.5))  # the fast path: all arrays
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(y3, y)
    empty, none = module.affine(np.zeros((0, 2)), b, 1.0)
    assert empty.shape == (0, 2) and int(none) == 0
    with pytest.raises(ValueError, match="expects size 2 on axis 1"):
        module.affine(np.zeros((3, 3)), b, 1.0)
    with pytest.raises(ValueError, match="expects size 2 on axis 0"):
        module.affine(x, np.zeros(3), 1.0)


def test_unknown_error_code_and_unsupported_dtypes(module: NativeModule) -> None:
    with pytest.raises(RuntimeError, match="unknown error code 42"):
        module.odd()
    with pytest.raises(TypeError, match="takes no arguments"):
        module.odd(1)
    with pytest.raises(TypeError, match="bf16 has no NumPy dtype"):
        module.halve(np.ones(3, dtype=np.float32))


def test_fast_path_is_generated(module: NativeModule) -> None:
    source = type(module.affine)._source
    assert source.startswith("def __call__(_self, x=MISSING, b=MISSING, s=MISSING, *_extra):")
    assert "s1[0] != 2" in source  # the static size of b
    assert not hasattr(type(module.halve), "_source")


def test_calls_from_threads(module: NativeModule) -> None:
    failures: list[str] = []

    def work(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for call in range(250):
            x = rng.standard_normal(int(rng.integers(0, 300))).astype(np.float32)
            if not np.array_equal(module.addone(x), x + 1):
                failures.append(f"thread {seed} call {call}")

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_call_overhead(module: NativeModule) -> None:
    """Printed, not asserted tightly: the cost of calling ``x + 1`` on 8 elements."""
    x = np.arange(8, dtype=np.float32)
    addone = module.addone

    def best(statement, number: int = 20_000) -> float:
        return min(timeit.repeat(statement, number=number, repeat=5)) / number * 1e6

    timings = {
        "numpy x + 1": best(lambda: x + 1),
        "native addone(x)": best(lambda: addone(x)),
        "native addone(x=x)": best(lambda: addone(x=x)),
        "general path (Signature.bind + call)": best(lambda: addone._call_general((x,), {})),
        "Signature.bind alone": best(lambda: addone.signature.bind((x,))),
    }
    print()
    for label, microseconds in timings.items():
        print(f"    {label:<36} {microseconds:6.2f} us")
    assert timings["native addone(x)"] < 100


# -- loading failures ------------------------------------------------------------------------


def test_not_artifacts(tmp_path: Path) -> None:
    random_file = tmp_path / "random.so"
    random_file.write_bytes(np.random.default_rng(0).bytes(4096))
    text_file = tmp_path / "model.tc"
    text_file.write_text(SOURCE)
    empty_file = tmp_path / "empty.so"
    empty_file.write_bytes(b"")
    for path in (random_file, text_file, empty_file):
        with pytest.raises(ArtifactError, match="not a tensorc artifact \\(not an ELF file\\)"):
            tensorc_runtime.load(path)
    elf32 = tmp_path / "elf32.so"
    elf32.write_bytes(b"\x7fELF\x01\x01\x01" + bytes(57))
    with pytest.raises(ArtifactError, match="32-bit little-endian ELF"):
        tensorc_runtime.load(elf32)
    with pytest.raises(ArtifactError, match="cannot read artifact"):
        tensorc_runtime.load(tmp_path / "missing.so")
    with pytest.raises(ArtifactError, match="is a directory"):
        tensorc_runtime.load(tmp_path)


@pytest.mark.parametrize("path", [123, None, ["model.so"]])
def test_load_names_its_parameter_for_a_path_of_the_wrong_type(path) -> None:
    import tensorc

    for load in (tensorc_runtime.load, tensorc.load):
        with pytest.raises(TypeError, match="load\\(\\): path must be a str or os.PathLike"):
            load(path)


def test_load_takes_a_bytes_path(built: Path) -> None:
    assert tensorc_runtime.load(os.fsencode(built)).path == str(built)


def test_plain_shared_object_is_not_an_artifact(tmp_path: Path) -> None:
    source = tmp_path / "plain.c"
    source.write_text("int answer(void) { return 42; }\n")
    library = tmp_path / "plain.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", library, source], check=True)
    with pytest.raises(ArtifactError, match="without a .tensorc_manifest section"):
        tensorc_runtime.load(library)


def test_truncated_artifact(built: Path, tmp_path: Path) -> None:
    data = built.read_bytes()
    for length in (3, 40, 64, len(data) // 2, len(data) - 1):
        truncated = tmp_path / f"truncated{length}.so"
        truncated.write_bytes(data[:length])
        with pytest.raises(ArtifactError, match="truncated|not an ELF"):
            tensorc_runtime.load(truncated)


def test_corrupted_manifest(built: Path, tmp_path: Path) -> None:
    corrupted = patched_copy(built, tmp_path / "c.so", b'{"format":', b'#"format":')
    with pytest.raises(ArtifactError, match="corrupted manifest \\(invalid JSON"):
        tensorc_runtime.load(corrupted)
    no_nul = built.read_bytes()
    start = no_nul.index(b'{"format":')
    end = no_nul.index(b"\0", start)
    unterminated = tmp_path / "u.so"
    unterminated.write_bytes(no_nul[:end] + b"}" + no_nul[end + 1 :])
    with pytest.raises(ArtifactError, match="not NUL-terminated|invalid JSON"):
        tensorc_runtime.load(unterminated)
    other_format = patched_copy(
        built, tmp_path / "f.so", b'"tensorc-artifact"', b'"tensorx-artifact"'
    )
    with pytest.raises(ArtifactError, match="manifest format 'tensorx-artifact'"):
        tensorc_runtime.load(other_format)


@pytest.mark.parametrize(
    ("version", "advice"), [(b"9", "newer tensorc: upgrade"), (b"0", "older tensorc: rebuild")]
)
def test_unsupported_format_version(
    built: Path, tmp_path: Path, version: bytes, advice: str
) -> None:
    patched = patched_copy(
        built, tmp_path / "v.so", b'"format_version":3,', b'"format_version":' + version + b","
    )
    with pytest.raises(ArtifactError, match=f"format version {version.decode()}.*{advice}"):
        tensorc_runtime.load(patched)


def test_manifest_ends_with_the_file_checksum(built: Path) -> None:
    manifest = read_manifest(built)
    assert list(manifest)[-1] == "file_sha256"
    data = bytearray(built.read_bytes())
    digest = manifest["file_sha256"].encode()
    assert data.count(digest) == 1
    start = data.index(digest)
    data[start : start + 64] = b"0" * 64
    assert hashlib.sha256(data).hexdigest() == manifest["file_sha256"]


def test_a_manifest_edited_without_its_checksum_is_refused(built: Path, tmp_path: Path) -> None:
    # A result shape of N shrunk to 1: trusted, the call would write past the result buffer.
    old = b'"addone","params":[{"name":"x","dtype":"f32","shape":["N"]}],"results":[{'
    old += b'"name":"result0","dtype":"f32","shape":["N"]}]'
    edited = patched_copy(
        built, tmp_path / "shape.so", old, old[:-6] + b'"1"]}]', reseal=False
    )
    with pytest.raises(ArtifactError, match="corrupted file .*file_sha256"):
        tensorc_runtime.load(edited)


def test_every_changed_byte_is_refused_before_dlopen(built: Path, tmp_path: Path) -> None:
    data = built.read_bytes()
    flipped = tmp_path / "flipped.so"
    for position in range(0, len(data), max(1, len(data) // 300)):
        corrupted = bytearray(data)
        corrupted[position] ^= 0x04
        flipped.write_bytes(corrupted)
        with pytest.raises(ArtifactError):
            tensorc_runtime.load(flipped)
    with open("/proc/self/maps", encoding="utf-8") as maps:
        assert "flipped.so" not in maps.read()


def test_format_version_2_without_a_checksum_still_loads(tmp_path: Path) -> None:
    target = host_target()
    manifest = make_manifest(functions=SIGNATURES, source_text=SOURCE, target=target)
    del manifest["file_sha256"]
    path = tmp_path / "v2.so"
    build_shared_object(
        [addone_module(), OTHER_FUNCTIONS_IR], {**manifest, "format_version": 2}, path,
        extra_c_sources=[THREAD_POOL_C], target=target,
    )
    module = tensorc_runtime.load(path)
    assert module.manifest["format_version"] == 2
    np.testing.assert_array_equal(module.addone(np.arange(3, dtype=np.float32)), [1, 2, 3])
    unsealed = tmp_path / "v3.so"
    build_shared_object(
        [addone_module(), OTHER_FUNCTIONS_IR], manifest, unsealed,
        extra_c_sources=[THREAD_POOL_C], target=target,
    )
    with pytest.raises(ArtifactError, match="corrupted manifest .*'file_sha256'"):
        tensorc_runtime.load(unsealed)


def test_missing_cpu_feature_is_refused_before_dlopen(tmp_path: Path) -> None:
    if host_cpu_features() is None:
        pytest.skip("this platform's CPU features cannot be read")
    features = [*host_target().required_features, "avx1024"]
    artifact_path = build(tmp_path / "future.so", cpu_features=features)
    with pytest.raises(ArtifactError, match="lacks features the artifact needs: avx1024"):
        tensorc_runtime.load(artifact_path)
    name = os.path.basename(artifact_path)
    with open("/proc/self/maps", encoding="utf-8") as maps:
        assert name not in maps.read()  # never dlopened


def test_other_architecture_is_refused(built: Path, tmp_path: Path) -> None:
    arch = host_target().arch
    other = {6: "mips64", 7: "riscv64"}.get(len(arch))
    if other is None or other == arch:
        pytest.skip(f"no same-length architecture name for {arch}")
    patched = patched_copy(
        built, tmp_path / "arch.so", f'"triple":"{arch}'.encode(), f'"triple":"{other}'.encode()
    )
    with pytest.raises(ArtifactError, match=f"built for {other}"):
        tensorc_runtime.load(patched)


def test_cuda_artifact_needs_pycuda(tmp_path: Path) -> None:
    cuda = build(tmp_path / "cuda.so", target="cuda", arch="sm_80", cuda={"ptx": ""})
    with pytest.raises(ArtifactError, match="CUDA artifact; loading it needs pycuda"):
        tensorc_runtime.load(cuda)


def test_missing_entry_point(tmp_path: Path) -> None:
    signatures = [*SIGNATURES, {**SIGNATURES[0], "name": "ghost"}]
    functions = make_manifest(
        functions=signatures, source_text=SOURCE, target=host_target()
    )["functions"]
    path = build(tmp_path / "ghost.so", functions=functions)
    with pytest.raises(ArtifactError, match="entry point 'tensorc_ghost'"):
        tensorc_runtime.load(path)


def test_runtime_loads_without_compiler_dependencies(built: Path) -> None:
    script = f"""
import sys
sys.path.insert(0, {str(ROOT / "runtime")!r})
for blocked in ("lark", "llvmlite", "tensorc"):
    sys.modules[blocked] = None
import numpy as np
import tensorc_runtime
module = tensorc_runtime.load({str(built)!r})
print(module.addone(np.arange(3, dtype=np.float32)).tolist())
"""
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[1.0, 2.0, 3.0]"


# -- C ---------------------------------------------------------------------------------------


def test_header_compiles(built: Path, tmp_path: Path) -> None:
    header = tmp_path / "model.h"
    header.write_text(emit_c_header(read_manifest(built), guard="MODEL_H"))
    text = header.read_text()
    assert "#ifndef MODEL_H" in text and 'extern "C"' in text
    assert "int32_t tensorc_affine(void *const *args" in text
    assert "affine(x: f64[N, 2], b: f64[2], s: f64) -> (f64[N, 2], i64)" in text
    assert "dims[0] = N" in text and "requires 1 <= N" in text
    twice = tmp_path / "twice.c"
    twice.write_text('#include "model.h"\n#include "model.h"\n')
    subprocess.run(
        ["cc", "-fsyntax-only", "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", twice],
        check=True,
    )
    if shutil.which("g++"):
        command = ["g++", "-fsyntax-only", "-x", "c++", "-Wall", "-Werror", header]
        subprocess.run(command, check=True)


C_PROGRAM = r"""
#include <stdio.h>
#include <string.h>
#include "model.h"

int main(void) {
    float x[4] = {1, 2, 3, 4}, y[4] = {0};
    void *args[1] = {x};
    void *results[1] = {y};
    int64_t dims[1] = {4};
    tensorc_error error;
    int32_t code = tensorc_addone(args, results, dims, &error);
    if (code != TENSORC_OK || y[0] != 2 || y[3] != 5) return 1;
    code = tensorc_fail(args, results, dims, &error);
    if (code != TENSORC_ERROR_INDEX || error.code != 1 || error.detail[0] != 7) return 2;
    if (tensorc_fail(args, results, dims, NULL) != TENSORC_ERROR_INDEX) return 3;
    if (strncmp(__tensorc_manifest, "{\"format\":\"tensorc-artifact\"", 28) != 0) return 4;
    printf("%g %g %g %g|%s\n", y[0], y[1], y[2], y[3], error.message);
    return 0;
}
"""


def test_c_program_calls_the_artifact(built: Path, tmp_path: Path) -> None:
    (tmp_path / "model.h").write_text(emit_c_header(read_manifest(built)))
    source = tmp_path / "main.c"
    source.write_text(C_PROGRAM)
    program = tmp_path / "main"
    subprocess.run(
        ["cc", "-std=c99", "-o", program, source, built, f"-Wl,-rpath,{built.parent}"],
        check=True,
    )
    completed = subprocess.run([program], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed
    assert completed.stdout.strip() == f"2 3 4 5|{FAIL_MESSAGE}"


# -- the command line ------------------------------------------------------------------------


def test_inspect(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(built)]) == 0
    out = capsys.readouterr().out
    for expected in (
        "target:       cpu",
        f"triple:       {host_target().triple}",
        "compiler:     tensorc 0.1.0",
        "format:       tensorc-artifact version 3",
        "source hash:  sha256:",
        "options:      opt_level=2",
        "addone(x: f32[N]) -> f32[N]",
        "affine(x: f64[N, 2], b: f64[2], s: f64) -> (f64[N, 2], i64)",
        "entry point tensorc_affine, dims [N]",
    ):
        assert expected in out
    assert main(["inspect", "--json", str(built)]) == 0
    assert json.loads(capsys.readouterr().out) == read_manifest(built)


def test_inspect_rejects_non_artifacts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text_file = tmp_path / "model.tc"
    text_file.write_text(SOURCE)
    assert main(["inspect", str(text_file)]) == 1
    assert "not a tensorc artifact" in capsys.readouterr().err


def test_run(built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = tmp_path / "x.npy"
    np.save(x, np.arange(5, dtype=np.float32))
    assert main(["run", str(built), "addone", f"x={x}"]) == 0
    out = capsys.readouterr().out
    assert "result0: f32, shape (5,)" in out and "[1. 2. 3. 4. 5.]" in out

    prefix = tmp_path / "out_"
    assert main(["run", str(built), "addone", f"x={x}", "-o", str(prefix)]) == 0
    np.testing.assert_array_equal(np.load(f"{prefix}result0.npy"), np.arange(1, 6))

    xs, b = tmp_path / "xs.npy", tmp_path / "b.npy"
    np.save(xs, np.ones((2, 2)))
    np.save(b, np.array([1.0, 2.0]))
    assert main(["run", str(built), "affine", f"x={xs}", f"b={b}", "s=3", "-o", str(prefix)]) == 0
    np.testing.assert_array_equal(np.load(f"{prefix}y.npy"), [[4.0, 5.0], [4.0, 5.0]])
    assert np.load(f"{prefix}count.npy") == 2


def test_run_errors(built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = tmp_path / "x.npy"
    np.save(x, np.arange(3, dtype=np.float32))
    so = str(built)
    usage_errors = {
        ("run", so, "nope", f"x={x}"): "no function 'nope'",
        ("run", so, "addone", f"y={x}"): "has no parameter 'y'",
        ("run", so, "addone"): "needs a value for x: f32[N]",
        ("run", so, "addone", f"x={x}", f"x={x}"): "given twice",
        ("run", so, "addone", "x"): "expected name=value.npy",
        ("run", so, "addone", "x=missing.npy"): "cannot read 'missing.npy'",
        ("run", so, "addone", "x=abc"): "neither a .npy file nor a number",
    }
    for argv, message in usage_errors.items():
        assert main(list(argv)) == 2, argv
        assert message in capsys.readouterr().err
    assert main(["run", so, "fail", f"x={x}"]) == 1
    assert FAIL_MESSAGE in capsys.readouterr().err
    np.save(x, np.arange(3, dtype=np.float64))
    assert main(["run", so, "addone", f"x={x}"]) == 1
    assert "expects f32, got float64" in capsys.readouterr().err
    assert main(["run", str(x), "addone"]) == 1
    assert "not a tensorc artifact" in capsys.readouterr().err

"""Parallel code generation (tensorc/codegen/cpu/parallel.py): the module's split into parts
is complete and links, the artifact built in parts computes what the one built whole does,
and a worker that fails is replaced by the calling process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import llvmlite.binding as llvm
import numpy as np
import pytest
import tensorc_runtime

from tensorc.codegen.cpu import parallel
from tensorc.codegen.cpu.backend import CpuBuild
from tensorc.codegen.cpu.parallel import build_jobs, compile_parts, split_module
from tensorc.driver import CompileOptions, Source, compile_to_ir

ROOT = Path(__file__).resolve().parent.parent
MLP_STEP = (ROOT / "examples" / "mlp.tc").read_text()  # three functions, ~20 kernels
DEFINE = re.compile(r'^define (\w+ )?[^@]*@"([^"]+)"', re.M)


def _build(text: str) -> CpuBuild:
    source = Source.load(text)
    options = CompileOptions(target="cpu", opt_level=2, pipeline=None)
    module, _ = compile_to_ir(source, options)
    return CpuBuild.create(module, source.text, 2)


def _definitions(text: str) -> dict[str, str]:
    """name -> linkage ('' for external) of every function `text` defines."""
    return {name: (linkage or "").strip() for linkage, name in DEFINE.findall(text)}


@pytest.fixture(scope="module")
def mlp_build() -> CpuBuild:
    return _build(MLP_STEP)


@pytest.mark.parametrize("parts", [2, 3, 4])
def test_split_defines_everything_once(mlp_build, parts):
    whole = _definitions(str(mlp_build.unoptimized))
    texts = split_module(mlp_build.unoptimized, parts)
    assert 2 <= len(texts) <= parts
    defined: dict[str, list[str]] = {}
    for text in texts:
        module = llvm.parse_assembly(text)  # every part is valid LLVM IR on its own
        module.verify()
        for name, linkage in _definitions(text).items():
            defined.setdefault(name, []).append(linkage)
    assert set(defined) == set(whole)
    for name, linkages in defined.items():
        external = [linkage for linkage in linkages if linkage != "internal"]
        # a function is external in at most one part; internal helpers may be copied
        assert len(external) <= 1, (name, linkages)
        if whole[name] != "internal":
            assert linkages == [whole[name]]
    moved = [name for name, linkages in defined.items() if "hidden" in linkages]
    assert moved and all(name.endswith((".task", ".epilogue")) for name in moved)
    entry_part = next(text for text in texts if '@"tensorc_train_step"(ptr' in text)
    for name in moved:
        assert f'declare void @"{name}"' in entry_part


def test_small_module_stays_whole():
    build = _build("def f(x: f32[N]) -> f32[N] { return exp(x) + 1.0 }")
    assert split_module(build.unoptimized, 4) == [str(build.unoptimized)]


def test_split_is_deterministic(mlp_build):
    again = _build(MLP_STEP)
    assert split_module(mlp_build.unoptimized, 2) == split_module(again.unoptimized, 2)


def _mlp_inputs():
    rng = np.random.default_rng(7)
    return [
        rng.standard_normal((64, 64), dtype=np.float32),
        rng.integers(0, 10, 64).astype(np.int32),
        (rng.standard_normal((64, 128)) * 0.05).astype(np.float32),
        np.zeros(128, np.float32),
        (rng.standard_normal((128, 10)) * 0.05).astype(np.float32),
        np.zeros(10, np.float32),
        np.float32(0.1),
    ]


def test_parts_give_the_same_artifact_results(tmp_path, monkeypatch):
    outputs = []
    for jobs in ("1", "2", "3"):
        monkeypatch.setenv(parallel.ENVIRONMENT_VARIABLE, jobs)
        build = _build(MLP_STEP)
        path = build.write_shared_object(tmp_path / f"mlp{jobs}.so")
        outputs.append(tensorc_runtime.load(path).train_step(*_mlp_inputs()))
    for result in outputs[1:]:
        for ours, reference in zip(result, outputs[0]):
            np.testing.assert_array_equal(ours, reference)


def test_a_failing_worker_is_redone_here():
    parent = os.getpid()

    def compile_part(text: str) -> bytes:
        if os.getpid() != parent:
            raise RuntimeError("worker failure")
        return text.encode()

    texts = ["a", "b", "c"]
    assert compile_parts(texts, compile_part, jobs=3) == [b"a", b"b", b"c"]


def test_workers_send_large_objects_back():
    texts = ["x", "y"]
    assert compile_parts(texts, lambda text: text.encode() * 3_000_000, jobs=2) == [
        b"x" * 3_000_000,
        b"y" * 3_000_000,
    ]


def test_errors_read_as_in_a_serial_build():
    def compile_part(text: str) -> bytes:
        raise ValueError(f"cannot compile {text}")

    with pytest.raises(ValueError, match="cannot compile a"):
        compile_parts(["a", "b"], compile_part, jobs=2)


@pytest.mark.parametrize(("setting", "expected"), [("1", 1), ("3", 3), ("0", 1), ("x", 1)])
def test_build_jobs_setting(monkeypatch, setting, expected):
    monkeypatch.setenv(parallel.ENVIRONMENT_VARIABLE, setting)
    assert build_jobs() == expected


def test_build_jobs_default_is_the_usable_cpus(monkeypatch):
    monkeypatch.delenv(parallel.ENVIRONMENT_VARIABLE, raising=False)
    assert build_jobs() == len(os.sched_getaffinity(0))


def test_no_worker_outlives_a_failure():
    def compile_part(text: str) -> bytes:
        if text == "a":
            raise ValueError("cannot compile a")
        time.sleep(30)
        return b""

    started = time.monotonic()
    with pytest.raises(ValueError):
        compile_parts(["a", "b"], compile_part, jobs=2)
    assert time.monotonic() - started < 10  # the sleeping worker was killed, not awaited


FORK_WARNING_PROBE = """
import os, warnings
from tensorc.codegen.cpu.parallel import compile_parts
# JAX's at-fork hook, which warns on every fork of a process that has imported it
os.register_at_fork(before=lambda: warnings.warn(
    "os.fork() was called. os.fork() is incompatible with multithreaded code, and JAX is "
    "multithreaded, so this will likely lead to a deadlock.", RuntimeWarning, stacklevel=2))
assert compile_parts(["a", "b"], str.encode, jobs=2) == [b"a", b"b"]
os.fork = lambda: (_ for _ in ()).throw(SystemExit("not forking"))  # warnings: back as set
warnings.warn("a later warning is still shown", RuntimeWarning)
"""


def test_workers_fork_without_other_libraries_fork_warnings():
    """A worker only runs LLVM under llvmlite's lock, so the generic warnings that fork() in a
    multi-threaded process may deadlock (JAX's, Python 3.12's) are silenced around it, and
    only there."""
    finished = subprocess.run(
        [sys.executable, "-W", "default", "-c", FORK_WARNING_PROBE],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )
    assert "fork" not in finished.stderr
    assert "a later warning is still shown" in finished.stderr

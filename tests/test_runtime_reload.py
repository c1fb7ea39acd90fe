"""Loading an artifact rebuilt at a path loaded before (runtime library.py).

The dynamic loader hands back the library already open under a path's name, so without care
a rebuilt artifact would run its predecessor's code under its own manifest. Each load must
run the code of the file its manifest came from, and modules loaded earlier keep theirs.
"""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorc_runtime

from tensorc.cli import main

ADD_ONE = "def f(x: f32[N]) -> f32[N] { return x + 1.0 }\n"
TIMES_HUNDRED = "def f(x: f32[N]) -> f32[N] { return x * 100.0 }\n"
TWO_ARGUMENTS = "def g(x: f32[N], y: f32[N]) -> f32[N] { return x * y + 2.0 }\n"


def compile_to(tmp_path: Path, source: str, output: Path) -> Path:
    """`tensorc compile` of `source` to `output` (written atomically: a new file there)."""
    program = tmp_path / f"program{len(list(tmp_path.glob('program*.tc')))}.tc"
    program.write_text(source)
    assert main(["compile", str(program), "-o", str(output)]) == 0
    return output


def ones(count: int = 3) -> np.ndarray:
    return np.ones(count, np.float32)


def test_a_rebuilt_artifact_runs_its_own_code(tmp_path: Path) -> None:
    path = tmp_path / "reload.so"
    first = tensorc_runtime.load(compile_to(tmp_path, ADD_ONE, path))
    np.testing.assert_array_equal(first.f(ones()), [2, 2, 2])
    second = tensorc_runtime.load(compile_to(tmp_path, TIMES_HUNDRED, path))
    np.testing.assert_array_equal(second.f(ones()), [100, 100, 100])
    np.testing.assert_array_equal(first.f(ones()), [2, 2, 2])  # the old module keeps its code
    assert second.manifest["source_hash"] != first.manifest["source_hash"]


def test_a_rebuilt_artifact_with_another_signature(tmp_path: Path) -> None:
    path = tmp_path / "reload.so"
    first = tensorc_runtime.load(compile_to(tmp_path, ADD_ONE, path))
    second = tensorc_runtime.load(compile_to(tmp_path, TWO_ARGUMENTS, path))
    assert list(second.functions) == ["g"]
    x = np.arange(4, dtype=np.float32)
    np.testing.assert_array_equal(second.g(x, x), x * x + 2)
    np.testing.assert_array_equal(first.f(x), x + 1)
    third = tensorc_runtime.load(compile_to(tmp_path, TIMES_HUNDRED, path))
    np.testing.assert_array_equal(third.f(x), x * 100)
    np.testing.assert_array_equal(second.g(x, x), x * x + 2)
    np.testing.assert_array_equal(first.f(x), x + 1)


def test_loading_one_file_version_again_shares_its_library(tmp_path: Path) -> None:
    path = compile_to(tmp_path, ADD_ONE, tmp_path / "reload.so")
    first, again = tensorc_runtime.load(path), tensorc_runtime.load(path)
    assert first.f._library is again.f._library
    compile_to(tmp_path, TIMES_HUNDRED, path)
    second, again = tensorc_runtime.load(path), tensorc_runtime.load(path)
    np.testing.assert_array_equal(again.f(ones()), [100, 100, 100])
    assert second.f._library is again.f._library
    assert second.f._library is not first.f._library


def test_concurrent_loads_of_a_rebuilt_artifact(tmp_path: Path) -> None:
    path = tmp_path / "reload.so"
    first = tensorc_runtime.load(compile_to(tmp_path, ADD_ONE, path))
    compile_to(tmp_path, TIMES_HUNDRED, path)
    with ThreadPoolExecutor(max_workers=8) as pool:  # a failed load raises here
        modules = list(pool.map(lambda _: tensorc_runtime.load(path), range(8)))
    for module in modules:
        np.testing.assert_array_equal(module.f(ones()), [100, 100, 100])
    np.testing.assert_array_equal(first.f(ones()), [2, 2, 2])
    assert len({id(module.f._library) for module in modules}) == 1


@pytest.mark.parametrize("name", ["reload.so", "with space.so"])
def test_no_copies_are_left_behind(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    tensorc_runtime.load(compile_to(tmp_path, ADD_ONE, path))
    tensorc_runtime.load(compile_to(tmp_path, TIMES_HUNDRED, path))
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".so") == [name]


def test_the_copy_falls_back_to_the_temporary_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuilt artifact in a directory it cannot be copied into is copied to the temporary
    directory instead (and the copy removed)."""
    artifacts, temporary = tmp_path / "artifacts", tmp_path / "temporary"
    artifacts.mkdir()
    temporary.mkdir()
    path = artifacts / "reload.so"
    first = tensorc_runtime.load(compile_to(tmp_path, ADD_ONE, path))
    compile_to(tmp_path, TIMES_HUNDRED, path)
    mkstemp = tempfile.mkstemp

    def refuse_beside_the_artifact(*args: Any, **kwargs: Any) -> tuple[int, str]:
        if Path(kwargs["dir"]) == artifacts:
            raise PermissionError(13, "Permission denied", str(artifacts))
        return mkstemp(*args, **kwargs)

    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    monkeypatch.setattr(tempfile, "mkstemp", refuse_beside_the_artifact)
    second = tensorc_runtime.load(path)
    np.testing.assert_array_equal(second.f(ones()), [100, 100, 100])
    np.testing.assert_array_equal(first.f(ones()), [2, 2, 2])
    assert list(temporary.iterdir()) == []

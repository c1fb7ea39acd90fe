"""The command line's inputs and outputs: encodings, paths that are not regular files, output
permissions, `-o -`, and write failures reported as errors (SPEC §1.7, §3)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tensorc
from tensorc.cli import main as cli_main

PROGRAM = "def f(x: f32[N]) -> f32[N] { return x + 1.0 }\n"


@pytest.fixture
def program(tmp_path: Path) -> Path:
    path = tmp_path / "model.tc"
    path.write_text(PROGRAM)
    return path


def test_a_byte_that_is_not_utf8_is_a_located_error(tmp_path: Path, capsys) -> None:
    source = tmp_path / "latin1.tc"
    source.write_bytes(b"def f(x: f32[3]) {\n  # caf\xe9\n  return x\n}\n")
    assert cli_main(["check", str(source)]) == 1
    err = capsys.readouterr().err
    assert f"{source}:2:8: error: invalid UTF-8 byte 0xe9: a source file must be UTF-8 text" in err
    assert "  # caf\ufffd\n       ^" in err
    with pytest.raises(tensorc.CompileError, match="invalid UTF-8 byte 0xe9"):
        tensorc.compile(source)


def test_a_byte_order_mark_is_dropped(tmp_path: Path) -> None:
    source = tmp_path / "bom.tc"
    source.write_bytes(b"\xef\xbb\xbf" + PROGRAM.encode())
    assert cli_main(["check", str(source)]) == 0


@pytest.mark.parametrize("name", ["a_directory", "missing_model"])
def test_an_input_that_is_not_a_readable_file_is_a_usage_error(
    tmp_path: Path, capsys, name: str
) -> None:
    (tmp_path / "a_directory").mkdir()
    path = tmp_path / name
    assert cli_main(["check", str(path)]) == 2
    assert f"tensorc: error: cannot read '{path}'" in capsys.readouterr().err
    with pytest.raises(OSError):
        tensorc.compile(str(path))


def test_outputs_get_the_umask_permissions(program: Path, tmp_path: Path) -> None:
    mask = os.umask(0o027)
    try:
        for emit in ("ir", "header", "llvm"):
            output = tmp_path / f"out.{emit}"
            assert cli_main(["compile", str(program), f"--emit={emit}", "-o", str(output)]) == 0
            assert stat.S_IMODE(output.stat().st_mode) == 0o640, emit
    finally:
        os.umask(mask)
    existing = tmp_path / "kept.h"
    existing.write_text("old")
    existing.chmod(0o604)
    assert cli_main(["compile", str(program), "--emit=header", "-o", str(existing)]) == 0
    assert stat.S_IMODE(existing.stat().st_mode) == 0o604
    assert "tensorc_f" in existing.read_text()


@pytest.mark.parametrize("emit", ["ir", "header", "so"])
def test_a_symbolic_link_is_written_through(program: Path, tmp_path: Path, emit: str) -> None:
    real, link = tmp_path / "real.out", tmp_path / "link.out"
    link.symlink_to(real.name)
    assert cli_main(["compile", str(program), f"--emit={emit}", "-o", str(link)]) == 0
    assert link.is_symlink() and real.is_file() and real.stat().st_size > 0


@pytest.mark.parametrize("emit", ["ir", "so"])
def test_dev_null_stays_a_device(program: Path, emit: str) -> None:
    assert cli_main(["compile", str(program), f"--emit={emit}", "-o", os.devnull]) == 0
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_dash_writes_text_outputs_to_stdout(program: Path, capsys) -> None:
    assert cli_main(["compile", str(program), "--emit=header", "-o", "-"]) == 0
    assert "int32_t tensorc_f(" in capsys.readouterr().out
    assert cli_main(["compile", str(program), "--emit=so", "-o", "-"]) == 2
    assert "-o - writes text to stdout" in capsys.readouterr().err


@pytest.mark.parametrize("emit", ["ir", "header"])
def test_an_unwritable_output_is_an_error_not_a_crash(
    program: Path, tmp_path: Path, capsys, emit: str
) -> None:
    for output in (tmp_path / "no_such_dir" / "out", tmp_path):
        assert cli_main(["compile", str(program), f"--emit={emit}", "-o", str(output)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("tensorc: error: cannot "), err
        assert "internal compiler error" not in err
    assert cli_main(["opt", str(program), "-o", str(tmp_path / "no_such_dir" / "x")]) == 1
    assert "cannot write" in capsys.readouterr().err


def test_dump_ir_dir_numbers_the_backend_passes_on(program: Path, tmp_path: Path) -> None:
    """`compile --dump-ir-dir` writes one file per pass of the -O pipeline and then of the
    backend's own pipeline, numbered on: no dump overwrites another."""
    dumps = tmp_path / "dumps"
    output = tmp_path / "m.so"
    assert cli_main(["compile", str(program), "-o", str(output), f"--dump-ir-dir={dumps}"]) == 0
    names = sorted(path.name for path in dumps.iterdir())
    assert names[0] == "00-input.tcir"
    assert [name[:2] for name in names] == [f"{i:02d}" for i in range(len(names))]
    assert len(names) > len(tensorc.passes.pipeline_for(2)) + 1  # the backend's passes too
    assert "00-input.tcir" in names and "kernel.generic" in (dumps / names[-1]).read_text()


@pytest.mark.parametrize(
    "command", [["opt"], ["compile", "--emit=ir"], ["compile"], ["compile", "--target=cuda"]]
)
def test_a_dump_directory_that_cannot_be_made_is_an_error(
    program: Path, tmp_path: Path, capsys, command: list[str]
) -> None:
    """Before, a file in the way was an internal compiler error (`opt`) or blamed the build."""
    in_the_way = tmp_path / "a_file"
    in_the_way.write_text("")
    output = tmp_path / "out"
    for dumps, reason in ((in_the_way, "a file of that name exists"),
                          (in_the_way / "below", "Not a directory")):
        argv = [command[0], str(program), *command[1:], "-o", str(output),
                f"--dump-ir-dir={dumps}"]
        assert cli_main(argv) == 1
        err = capsys.readouterr().err
        assert err == f"tensorc: error: cannot create IR dump directory '{dumps}': {reason}\n"
    assert not output.exists()


@pytest.mark.parametrize(
    ("body", "where"),
    [("def f(x: bf16[N]) -> bf16[N] { return x }", "1:1"),
     ("def f(x: f32[N]) -> f32[N] {\n    y = cast(x, bf16)\n    return cast(y, f32) * 2.0\n}",
      "3:")],
)
def test_bf16_on_the_cpu_target_is_a_located_error(
    tmp_path: Path, capsys, body: str, where: str
) -> None:
    """Was an internal compiler error (`NotImplementedError: bf16 has no NumPy dtype`)."""
    source = tmp_path / "half.tc"
    source.write_text(body + "\n")
    output = tmp_path / "half.so"
    assert cli_main(["compile", str(source), "-o", str(output)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{source}:{where}"), err
    assert "error: the CPU backend does not support bf16 yet\n" in err
    assert "internal compiler error" not in err and not output.exists()
    with pytest.raises(tensorc.CompileError, match="does not support bf16"):
        tensorc.compile(source, target="cpu")


def test_the_input_file_is_never_the_output(program: Path, capsys) -> None:
    before = program.read_bytes()
    assert cli_main(["compile", str(program), "-o", str(program)]) == 1
    assert "is the input file" in capsys.readouterr().err
    assert program.read_bytes() == before


def test_an_output_in_a_missing_directory_fails_before_compiling(
    program: Path, tmp_path: Path, capsys
) -> None:
    output = tmp_path / "no_such_dir" / "model.so"
    assert cli_main(["compile", str(program), "-o", str(output), "--timing"]) == 1
    err = capsys.readouterr().err
    assert f"cannot write '{output}': there is no directory" in err
    assert "timing report" not in err  # nothing was compiled
    assert ".model.so." not in err  # no temporary file name


@pytest.mark.parametrize("command", ["inspect", "run"])
def test_a_missing_or_directory_artifact_is_a_usage_error(
    tmp_path: Path, capsys, command: str
) -> None:
    for path in (tmp_path / "missing.so", tmp_path):
        extra = ["f"] if command == "run" else []
        assert cli_main([command, str(path), *extra]) == 2
        assert f"tensorc: error: cannot read '{path}'" in capsys.readouterr().err


def test_run_takes_values_after_its_options_and_names_every_result_file(
    tmp_path: Path, capsys
) -> None:
    source = tmp_path / "two.tc"
    source.write_text(
        "def two(result1: f32[N], a: f32[N]) -> (f32[N], f32[N]) { return result1, a + 1.0 }\n"
    )
    artifact = tmp_path / "two.so"
    assert cli_main(["compile", str(source), "-o", str(artifact)]) == 0
    np.save(tmp_path / "a.npy", np.arange(3, dtype=np.float32))
    prefix = str(tmp_path / "out_")
    a = str(tmp_path / "a.npy")
    assert cli_main(["run", str(artifact), "two", "-o", prefix, f"result1={a}", f"a={a}"]) == 0
    written = sorted(path.name for path in tmp_path.glob("out_*.npy"))
    assert written == ["out_result1.npy", "out_result1_.npy"]
    np.testing.assert_array_equal(np.load(tmp_path / "out_result1_.npy"), [1, 2, 3])
    capsys.readouterr()
    np.savez(tmp_path / "pair.npz", x=np.zeros(3))
    archive = str(tmp_path / "pair.npz")
    assert cli_main(["run", str(artifact), "two", f"result1={archive}", f"a={a}"]) == 2
    assert "is an .npz archive" in capsys.readouterr().err


def test_timing_reports_the_frontend_and_the_backend(program: Path, tmp_path: Path, capsys):
    assert cli_main(["compile", str(program), "-o", str(tmp_path / "m.so"), "--timing"]) == 0
    report = capsys.readouterr().err
    for row in ("frontend", "fusion", "backend: lower to LLVM IR",
                "backend: LLVM optimisation, object code and link", "Total"):
        assert row in report, row


def test_a_closed_stdout_is_no_internal_error(program: Path) -> None:
    code = (
        "import sys; from tensorc.cli import main\n"
        f"sys.exit(main(['opt', {str(program)!r}]))\n"
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert reader.stdout is not None
    reader.stdout.close()  # the reader goes away before tensorc writes
    _, err = reader.communicate()
    assert b"internal compiler error" not in err and b"Traceback" not in err
    with open("/dev/full", "w") as full:
        completed = subprocess.run(
            [sys.executable, "-c", code], stdout=full, stderr=subprocess.PIPE, check=False
        )
    assert completed.returncode == 1
    message = completed.stderr.decode().strip()
    assert message == "tensorc: error: cannot write: No space left on device"


def test_an_empty_or_comment_only_source_string_is_an_empty_module() -> None:
    for source in ("", "   ", "# nothing yet"):
        assert tensorc.compile(source, target="interp").functions == {}

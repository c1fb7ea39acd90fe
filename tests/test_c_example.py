"""examples/c: a C program calls a compiled model (train_step, predict) with no Python."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_c_program_trains_and_predicts(tmp_path: Path) -> None:
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc) on this machine")
    result = subprocess.run(
        ["bash", str(ROOT / "examples" / "c" / "build.sh"), str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("step   0  loss")
    assert lines[-1].startswith("accuracy on a fresh batch:")
    correct = int(lines[-1].split(":")[1].split("/")[0])
    assert correct > 64 // 4  # far above chance (1/10) after training

"""Runs the lit + filecheck suite under tests/filecheck so that pytest (and CI) counts it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SUITE = Path(__file__).parent / "filecheck"


def test_lit_suite() -> None:
    lit = shutil.which("lit")
    if lit is None or shutil.which("filecheck") is None:
        pytest.fail("lit and filecheck are test dependencies: pip install -e .[test]")
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    result = subprocess.run(
        [lit, "-q", "--no-progress-bar", str(SUITE)],
        capture_output=True, text=True, env=env, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]

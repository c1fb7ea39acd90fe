"""Finding and running `ptxas`, NVIDIA's PTX assembler (optional at compile time).

`find_ptxas()` looks, in order, at `$TENSORC_PTXAS`, `ptxas` on `PATH`, `$CUDA_HOME/bin`,
`$CUDA_PATH/bin`, `/usr/local/cuda/bin`, and the binaries shipped in the `nvidia-cuda-nvcc`
PyPI wheels (`site-packages/nvidia/cuda_nvcc/bin/ptxas`, `nvidia/cu13/bin/ptxas`, ...).
With one, a CUDA artifact embeds a cubin for its `--arch` besides the PTX, so that loading it
needs no JIT compilation; without one it embeds only the PTX, which the driver compiles.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

PTXAS_ENVIRONMENT = "TENSORC_PTXAS"
PTXAS_TIMEOUT_SECONDS = 300


class PtxasError(Exception):
    """ptxas rejected the PTX (a compiler bug) or could not run."""


def _candidates() -> list[str]:
    found: list[str] = []
    configured = os.environ.get(PTXAS_ENVIRONMENT)
    if configured:
        found.append(configured)
    on_path = shutil.which("ptxas")
    if on_path:
        found.append(on_path)
    for variable in ("CUDA_HOME", "CUDA_PATH"):
        root = os.environ.get(variable)
        if root:
            found.append(os.path.join(root, "bin", "ptxas"))
    found.append("/usr/local/cuda/bin/ptxas")
    for entry in sys.path:
        if not entry or not os.path.isdir(os.path.join(entry, "nvidia")):
            continue
        found += sorted(glob.glob(os.path.join(entry, "nvidia", "*", "bin", "ptxas")))
    return found


@lru_cache(maxsize=1)
def find_ptxas() -> str | None:
    """The path of a runnable ptxas, or None (see the module documentation)."""
    for candidate in _candidates():
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


@lru_cache(maxsize=8)
def ptxas_version(path: str) -> str | None:
    """`13.0` for a ptxas of CUDA 13.0 (None if it does not say)."""
    try:
        completed = subprocess.run([path, "--version"], capture_output=True, text=True,
                                   timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"release (\d+\.\d+)", completed.stdout)
    return found.group(1) if found else None


def assemble(ptx: str, arch: str, ptxas: str | None = None) -> bytes:
    """The cubin of `ptx` for `arch` (PtxasError when ptxas fails or there is none)."""
    path = ptxas or find_ptxas()
    if path is None:
        raise PtxasError("no ptxas found (install the CUDA toolkit or `pip install "
                         "nvidia-cuda-nvcc`, or set TENSORC_PTXAS)")
    with tempfile.TemporaryDirectory(prefix="tensorc-ptxas-") as workdir:
        source = Path(workdir) / "module.ptx"
        output = Path(workdir) / "module.cubin"
        source.write_text(ptx)
        command = [path, "--gpu-name", arch, str(source), "-o", str(output)]
        try:
            completed = subprocess.run(command, capture_output=True, text=True,
                                       timeout=PTXAS_TIMEOUT_SECONDS, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise PtxasError(f"cannot run {path}: {error}") from error
        if completed.returncode != 0:
            message = (completed.stderr or completed.stdout).strip()
            raise PtxasError(f"ptxas --gpu-name {arch} failed (exit {completed.returncode}):\n"
                             f"{message[-4000:]}")
        return output.read_bytes()

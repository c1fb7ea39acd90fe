#!/usr/bin/env bash
# Installs the peers benchmarks/run.py compares tensorc with (each is optional; run.py times
# whichever are installed): PyTorch's CPU build, numba, JAX and PyTensor.
set -euo pipefail
python3 -m pip install --quiet torch==2.13.0 numba==0.68.0 jax==0.10.2 jaxlib==0.10.2
# PyTensor 3.0.7 pins numba<=0.65.1, whose llvmlite 0.47 is older than the llvmlite 0.50
# tensorc needs. Its default mode compiles its ops to C and does not use numba, so it goes in
# without its pins, next to numba 0.68, and its other requirements are installed by name.
python3 -m pip install --quiet --no-deps pytensor==3.0.7
python3 -m pip install --quiet scipy filelock etuples logical-unification miniKanren cons

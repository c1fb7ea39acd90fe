"""tensorc_runtime: load and call tensorc artifacts with only NumPy installed.

This package must import nothing from ``tensorc`` (the compiler) and nothing but the standard
library and NumPy, so that a deployment needs neither lark nor llvmlite.
"""

from __future__ import annotations

from .dims import dim_names, eval_dim, eval_extent
from .errors import ArtifactError
from .native import load
from .signature import BoundCall, Constraint, Signature, TensorSpec

__all__ = [
    "FORMAT_VERSION",
    "ArtifactError",
    "BoundCall",
    "Constraint",
    "Signature",
    "TensorSpec",
    "__version__",
    "dim_names",
    "eval_dim",
    "eval_extent",
    "load",
]

__version__ = "0.1.0"
FORMAT_VERSION = 3  # what tensorc writes; elf.SUPPORTED_FORMAT_VERSIONS: what this reads

"""tensorc: an ahead-of-time tensor compiler.

    import tensorc
    mod = tensorc.compile("model.tc", target="interp")   # or "cpu" / "cuda"
    out = mod.mlp(x, w1, b1, w2, b2)
"""

from __future__ import annotations

import os

__version__ = "0.1.0"

from tensorc.driver import CompileError, compile  # noqa: E402


def load(path: str | os.PathLike[str]):
    """Load a compiled artifact (runtime only; see `tensorc_runtime.load`)."""
    import tensorc_runtime

    return tensorc_runtime.load(path)


__all__ = ["CompileError", "__version__", "compile", "load"]

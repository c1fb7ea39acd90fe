"""tensorc: an ahead-of-time tensor compiler.

    import tensorc
    mod = tensorc.compile("model.tc", target="interp")   # or "cpu" / "cuda"
    out = mod.mlp(x, w1, b1, w2, b2)
"""

from __future__ import annotations

import os

__version__ = "0.1.0"

from tensorc.gc_pause import cycle_collection_paused  # noqa: E402

with cycle_collection_paused():  # a fifth of the import's time, measured (gc_pause.py)
    from tensorc.driver import CompileError, compile  # noqa: E402


def load(path: str | os.PathLike[str]):
    """Load a compiled artifact (runtime only; see `tensorc_runtime.load`)."""
    import tensorc_runtime

    return tensorc_runtime.load(path)


__all__ = ["CompileError", "__version__", "compile", "load"]

"""tensorc: an ahead-of-time tensor compiler.

    import tensorc
    mod = tensorc.compile("model.tc", target="interp")   # or "cpu" / "cuda"
    out = mod.mlp(x, w1, b1, w2, b2)
"""

from __future__ import annotations

__version__ = "0.1.0"

from tensorc.driver import CompileError, compile  # noqa: E402


def load(path: str):
    """Load a compiled artifact (runtime only; see `tensorc_runtime.load`)."""
    import tensorc_runtime

    loader = getattr(tensorc_runtime, "load", None)
    if loader is None:
        raise NotImplementedError("loading native artifacts needs the CPU backend (not built yet)")
    return loader(path)


__all__ = ["CompileError", "__version__", "compile", "load"]

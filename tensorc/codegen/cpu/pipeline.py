"""The CPU backend's own passes, run after the user's `-O` pipeline (or `--passes`).

    -O0        inline, autodiff, decompose, fusion{max-ops=1}, dce    every op its own kernel
    -O1..-O3   inline, autodiff, decompose, fusion, dce

So that lowering only ever meets `kernel.generic` and the `tc` ops fusion leaves between
kernels (`tc_ops.LOWERINGS`), whatever pipeline the user chose. Each of these passes leaves a
module it has nothing to do on as it is (no calls, no `grad`, nothing left to decompose or
fuse), so after a standard `-O` pipeline they cost little.
"""

from __future__ import annotations

from tensorc.ir.dialects.func import Module
from tensorc.passes import Instrumentation, PassManager, parse_pipeline

UNFUSED_PIPELINE = "inline,autodiff,decompose,fusion{max-ops=1},dce"
FUSED_PIPELINE = "inline,autodiff,decompose,fusion,dce"


def backend_pipeline(opt_level: int) -> str:
    return UNFUSED_PIPELINE if opt_level == 0 else FUSED_PIPELINE


def prepare_for_lowering(
    module: Module,
    opt_level: int,
    verify: bool = True,
    instrumentation: Instrumentation | None = None,
) -> Module:
    """Run the backend pipeline on `module` in place (and return it)."""
    passes = parse_pipeline(backend_pipeline(opt_level))
    manager = PassManager(passes, verify, instrumentation or Instrumentation())
    manager.run(module)
    return module

"""The CPU backend's own passes, run after the user's `-O` pipeline (or `--passes`).

    -O0        decompose, fusion{max-ops=1}, dce     every op its own kernel
    -O1..-O3   decompose, fusion, dce                (a no-op where the pipeline fused)

So that lowering only ever meets `kernel.generic` and the `tc` ops fusion leaves between
kernels (`tc_ops.LOWERINGS`), whatever pipeline the user chose. `decompose` and `fusion`
leave an already fused module as it is.
"""

from __future__ import annotations

from tensorc.ir.dialects.func import Module
from tensorc.passes import Instrumentation, PassManager, parse_pipeline

UNFUSED_PIPELINE = "decompose,fusion{max-ops=1},dce"
FUSED_PIPELINE = "decompose,fusion,dce"


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

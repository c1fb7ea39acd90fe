"""Code generation: LLVM IR for the CPU (llvmlite), PTX for CUDA, and the artifact container."""

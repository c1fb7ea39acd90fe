"""The CPU backend: LLVM IR for x86-64 and aarch64 (through llvmlite)."""

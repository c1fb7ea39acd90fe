"""tensorc.codegen.llvm_math*: each function, compiled into a 16-wide (float) / 8-wide (double)
vector loop with a scalar tail, stays within the ulp bound of the correctly rounded result over
a sweep of the whole range, gets the special values right, and compiles to vector code with no
calls. The sweep here is smaller than benchmarks/math_accuracy.py's; both use the harness below.
"""

from __future__ import annotations

import ctypes
import math
import os
import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest
from llvmlite import binding as llvm
from llvmlite import ir

from tensorc.codegen.llvm_math_special import BINARY_MATH, UNARY_MATH

DTYPES = {"float32": ir.FloatType(), "float64": ir.DoubleType()}
VECTOR_WIDTH = {"float32": 16, "float64": 8}
ULP_BOUND = 4.0

# ---------------------------------------------------------------------------------------------
# Kernel harness: void f(T* in, T* out, i64 n) (binary: f(T* a, T* b, T* out, i64 n)).


def _emit_kernel(module: ir.Module, name: str, emit: Callable, arity: int, element: ir.Type,
                 width: int) -> None:
    ptr = ir.PointerType()
    i64 = ir.IntType(64)
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr] * (arity + 1) + [i64]),
                           name)
    for arg in function.args[:-1]:
        arg.add_attribute("noalias")
    *inputs, out, n = function.args
    entry, vector_head, vector_body, scalar_head, scalar_body, done = (
        function.append_basic_block(label) for label in
        ("entry", "vector_head", "vector_body", "scalar_head", "scalar_body", "done"))
    b = ir.IRBuilder(entry)
    vector_end = b.and_(n, ir.Constant(i64, -width))
    b.branch(vector_head)

    def body(block: ir.Block, index: ir.Value, value_type: ir.Type, align: int) -> None:
        b.position_at_end(block)
        args = [b.load(b.gep(p, [index], inbounds=True, source_etype=element), typ=value_type,
                       align=align) for p in inputs]
        result = emit(b, *args)
        b.store(result, b.gep(out, [index], inbounds=True, source_etype=element), align=align)

    b.position_at_end(vector_head)
    i = b.phi(i64)
    i.add_incoming(ir.Constant(i64, 0), entry)
    b.cbranch(b.icmp_signed("<", i, vector_end), vector_body, scalar_head)
    align = 8 if isinstance(element, ir.DoubleType) else 4
    body(vector_body, i, ir.VectorType(element, width), align)
    i.add_incoming(b.add(i, ir.Constant(i64, width)), vector_body)
    b.branch(vector_head)

    b.position_at_end(scalar_head)
    j = b.phi(i64)
    j.add_incoming(i, vector_head)
    b.cbranch(b.icmp_signed("<", j, n), scalar_body, done)
    body(scalar_body, j, element, align)
    j.add_incoming(b.add(j, ir.Constant(i64, 1)), scalar_body)
    b.branch(scalar_head)

    b.position_at_end(done)
    b.ret_void()


@cache
def _target_machine() -> llvm.TargetMachine:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    target = llvm.Target.from_triple(llvm.get_process_triple())
    return target.create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(), opt=3,
        reloc="pic", codemodel="default")


@dataclass
class CompiledKernels:
    """A loaded shared library of math kernels and the optimised IR they came from."""

    dtype: str
    library: ctypes.CDLL
    optimized_ir: str
    path: str

    def run(self, name: str, *inputs: np.ndarray) -> np.ndarray:
        arrays = [np.ascontiguousarray(a, dtype=self.dtype) for a in inputs]
        out = np.empty_like(arrays[0])
        function = getattr(self.library, name)
        pointers = [ctypes.c_void_p(a.ctypes.data) for a in arrays + [out]]
        function(*pointers, ctypes.c_int64(out.size))
        return out

    def function_ir(self, name: str) -> str:
        match = re.search(rf"define [^\n]*@{name}\(.*?\n}}\n", self.optimized_ir, re.S)
        assert match, name
        return match.group(0)


def compile_kernels(dtype: str, names: list[str] | None = None) -> CompiledKernels:
    """Compile one kernel per math function (`names`, default all) for `dtype`."""
    machine = _target_machine()
    element = DTYPES[dtype]
    module = ir.Module(name=f"math_{dtype}")
    module.triple = llvm.get_process_triple()
    for name, emit in UNARY_MATH.items():
        if names is None or name in names:
            _emit_kernel(module, name, emit, 1, element, VECTOR_WIDTH[dtype])
    for name, emit in BINARY_MATH.items():
        if names is None or name in names:
            _emit_kernel(module, name, emit, 2, element, VECTOR_WIDTH[dtype])
    parsed = llvm.parse_assembly(str(module))
    parsed.triple = llvm.get_process_triple()
    parsed.data_layout = str(machine.target_data)
    parsed.verify()
    options = llvm.create_pipeline_tuning_options(speed_level=3)
    options.slp_vectorization = True
    options.loop_vectorization = True
    passes = llvm.create_pass_builder(machine, options)
    passes.getModulePassManager().run(parsed, passes)
    optimized = str(parsed)
    workdir = tempfile.mkdtemp(prefix="tensorc_math_")
    obj = os.path.join(workdir, "math.o")
    lib = os.path.join(workdir, "math.so")
    with open(obj, "wb") as f:
        f.write(machine.emit_object(parsed))
    subprocess.run(["cc", "-shared", "-o", lib, obj], check=True)
    return CompiledKernels(dtype, ctypes.CDLL(lib), optimized, lib)


# ---------------------------------------------------------------------------------------------
# Inputs and ulp errors


def bit_pattern_sweep(dtype: str, count: int, positive_only: bool = False) -> np.ndarray:
    """`count` values with uniformly spaced bit patterns over all finite values (both signs)."""
    info = np.finfo(dtype)
    int_type = np.int32 if dtype == "float32" else np.int64
    top = int(np.array(info.max, dtype=dtype).view(int_type))
    half = count if positive_only else count // 2
    patterns = np.linspace(0, top, half, dtype=np.float64).astype(int_type)
    values = patterns.view(dtype)
    return values if positive_only else np.concatenate([values, -values])


def dense_ranges(dtype: str, ranges: list[tuple[float, float]], count: int) -> np.ndarray:
    """`count` points spread uniformly over each closed range."""
    return np.concatenate([np.linspace(a, b, count, dtype=np.float64).astype(dtype)
                           for a, b in ranges])


def around(dtype: str, centres: list[float], steps: int) -> np.ndarray:
    """The `steps` nearest representable values on each side of each centre."""
    int_type = np.int32 if dtype == "float32" else np.int64
    offsets = np.arange(-steps, steps + 1, dtype=int_type)
    out = []
    for centre in centres:
        c = np.array(centre, dtype=dtype)
        if c == 0:
            tiny = np.arange(0, steps, dtype=int_type).view(dtype)
            out += [tiny, -tiny]
            continue
        bits = c.view(int_type) + offsets
        out.append(bits.view(dtype))
    return np.concatenate(out)


def ulp_of(reference: np.ndarray, dtype: str) -> np.ndarray:
    """The ulp of the dtype at each (wider) reference value: 2^(exponent - p + 1), with the
    exponent clamped to the subnormal range."""
    info = np.finfo(dtype)
    _, exponent = np.frexp(np.abs(reference))
    exponent = np.maximum(exponent.astype(np.int64) - 1, info.minexp)
    return np.ldexp(np.ones_like(reference), exponent - info.nmant)


def ulp_errors(result: np.ndarray, reference: np.ndarray, dtype: str) -> np.ndarray:
    """|result - reference| in ulps of the correctly rounded value; `reference` is wider than
    `dtype`. NaN/inf must match exactly (error 0 or inf)."""
    reference = np.asarray(reference)
    wide = reference.dtype
    rounded = reference.astype(dtype)
    err = np.zeros(result.shape, dtype=np.float64)
    both_nan = np.isnan(result) & np.isnan(reference)
    special = ~np.isfinite(result) | ~np.isfinite(rounded)
    matches = (result.astype(wide) == rounded.astype(wide)) | both_nan
    err[special & ~matches] = np.inf
    finite = ~special
    diff = np.abs(result[finite].astype(wide) - reference[finite])
    err[finite] = (diff / ulp_of(reference[finite], dtype)).astype(np.float64)
    return err


def mpmath_reference(function: Callable, x: np.ndarray, precision: int = 90) -> np.ndarray:
    """function(x) per point at `precision` bits, as long double."""
    import mpmath

    with mpmath.workprec(precision):
        values = [function(mpmath.mpf(float(v))) for v in x]
    return np.array([np.longdouble(mpmath.nstr(v, 25)) if mpmath.isfinite(v) else float(v)
                     for v in values], dtype=np.longdouble)

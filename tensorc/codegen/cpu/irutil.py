"""Small llvmlite helpers shared by the CPU backend: types, declarations, counted loops.

Registers hold `bool` as `i1`; memory holds it as one byte (`i8`, 0 or 1), as NumPy does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import llvmlite.ir as ir

from tensorc.codegen.artifact import reserved_symbol_name
from tensorc.ir.dtypes import DType
from tensorc.ir.location import Location

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
F16 = ir.HalfType()
F32 = ir.FloatType()
F64 = ir.DoubleType()
PTR = ir.PointerType()
VOID = ir.VoidType()

_REGISTER_TYPES: dict[DType, ir.Type] = {
    DType.BOOL: I1,
    DType.I32: I32,
    DType.I64: I64,
    DType.F16: F16,
    DType.F32: F32,
    DType.F64: F64,
}


class UnsupportedError(NotImplementedError):
    """The IR uses something the CPU backend does not lower (an op or a dtype); `loc` is
    where, when known, so that the driver can report it like any program error."""

    def __init__(self, message: str, loc: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc


def register_type(dtype: DType) -> ir.Type:
    """The LLVM type of one scalar of `dtype` in a register."""
    if dtype not in _REGISTER_TYPES:
        raise UnsupportedError(f"the CPU backend does not support {dtype} yet")
    return _REGISTER_TYPES[dtype]


def memory_type(dtype: DType) -> ir.Type:
    """The LLVM type of one element of `dtype` in memory."""
    return I8 if dtype.is_bool else register_type(dtype)


def itemsize(dtype: DType) -> int:
    return 1 if dtype.is_bool else dtype.numpy.itemsize


def splat(builder: ir.IRBuilder, scalar: ir.Value, vector: ir.VectorType) -> ir.Value:
    """`scalar` in every lane of a `vector`."""
    single = builder.insert_element(ir.Constant(vector, ir.Undefined), scalar, I64(0))
    zeros = ir.Constant(ir.VectorType(I32, vector.count), [0] * vector.count)
    return builder.shuffle_vector(single, ir.Constant(vector, ir.Undefined), zeros)


def declare(
    module: ir.Module, name: str, result: ir.Type, params: Sequence[ir.Type], var_arg: bool = False
) -> ir.Function:
    """The function `name` of `module`, declared on first use."""
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    return ir.Function(module, ir.FunctionType(result, list(params), var_arg=var_arg), name)


def intrinsic(module: ir.Module, base: str, value_type: ir.Type, arity: int = 1) -> ir.Function:
    """An overloaded intrinsic on one type: `llvm.smax.i64`, `llvm.fabs.v16f32`, ..."""
    return declare(module, f"{base}.{type_suffix(value_type)}", value_type, [value_type] * arity)


def smin_i64(builder: ir.IRBuilder, a: ir.Value, b: ir.Value) -> ir.Value:
    """`llvm.smin.i64(a, b)`."""
    return builder.call(intrinsic(builder.module, "llvm.smin", I64, 2), [a, b])


def smax_i64(builder: ir.IRBuilder, a: ir.Value, b: ir.Value) -> ir.Value:
    """`llvm.smax.i64(a, b)`."""
    return builder.call(intrinsic(builder.module, "llvm.smax", I64, 2), [a, b])


def type_suffix(value_type: ir.Type) -> str:
    if isinstance(value_type, ir.VectorType):
        return f"v{value_type.count}{type_suffix(value_type.element)}"
    if isinstance(value_type, ir.IntType):
        return f"i{value_type.width}"
    return {F16: "f16", F32: "f32", F64: "f64"}[value_type]


def load_element(builder: ir.IRBuilder, pointer: ir.Value, dtype: DType) -> ir.Value:
    """Load one element of `dtype` (a bool byte becomes an `i1`)."""
    stored = memory_type(dtype)
    value = builder.load(pointer, typ=stored, align=itemsize(dtype))
    if dtype.is_bool:
        return builder.icmp_unsigned("!=", value, I8(0))
    return value


def store_element(builder: ir.IRBuilder, value: ir.Value, pointer: ir.Value, dtype: DType) -> None:
    if dtype.is_bool:
        value = builder.zext(value, I8)
    builder.store(value, pointer, align=itemsize(dtype))


def element_pointer(
    builder: ir.IRBuilder, base: ir.Value, offset: ir.Value, dtype: DType
) -> ir.Value:
    """`&base[offset]` for elements of `dtype`."""
    return builder.gep(base, [offset], inbounds=True, source_etype=memory_type(dtype))


def byte_pointer(builder: ir.IRBuilder, base: ir.Value, offset: ir.Value) -> ir.Value:
    return builder.gep(base, [offset], inbounds=True, source_etype=I8)


def emit_memcpy(builder: ir.IRBuilder, dest: ir.Value, source: ir.Value, nbytes: ir.Value) -> None:
    function = declare(builder.module, "llvm.memcpy.p0.p0.i64", VOID, [PTR, PTR, I64, I1])
    builder.call(function, [dest, source, nbytes, I1(0)])


def emit_memset_zero(builder: ir.IRBuilder, dest: ir.Value, nbytes: ir.Value) -> None:
    function = declare(builder.module, "llvm.memset.p0.i64", VOID, [PTR, I8, I64, I1])
    builder.call(function, [dest, I8(0), nbytes, I1(0)])


LOOP_HEADER = "header"  # name suffix of a loop header block (parallel.py counts loops by it)


def tail_folded_loop(module: ir.Module) -> ir.MDValue:
    """A new loop ID (`llvm.loop` metadata) asking LLVM's vectoriser to fold the loop's
    remainder into masked vector iterations (`llvm.loop.vectorize.predicate.enable`) instead
    of running it scalar. Each call gives a distinct ID, as each loop needs its own."""
    return _loop_id(module, [
        [ir.MetaDataString(module, "llvm.loop.vectorize.predicate.enable"), ir.IntType(1)(1)]
    ])


def plain_scalar_loop(module: ir.Module) -> ir.MDValue:
    """A new loop ID asking LLVM to keep the loop as written: not vectorised, not unrolled
    (a loop of a few iterations, where the vector loop's set-up would cost more)."""
    return _loop_id(module, [
        [ir.MetaDataString(module, "llvm.loop.vectorize.enable"), ir.IntType(1)(0)],
        [ir.MetaDataString(module, "llvm.loop.unroll.disable")],
    ])


def _loop_id(module: ir.Module, properties: list[list]) -> ir.MDValue:
    nodes = [module.add_metadata(list(p)) for p in properties]
    tag = module.add_metadata(  # an inert property that makes this ID unlike any other
        [ir.MetaDataString(module, "tensorc.loop"), I64(len(module.metadata))]
    )
    loop = module.add_metadata([None, tag, *nodes])
    loop.operands = (loop, tag, *nodes)  # a loop ID's first operand is the ID itself
    return loop


@contextmanager
def counted_loop(
    builder: ir.IRBuilder, start: ir.Value, stop: ir.Value, name: str,
    step: int | ir.Value = 1, loop_id: ir.MDValue | None = None,
) -> Iterator[ir.Value]:
    """`for i in range(start, stop, step)` over i64 (signed compare, step > 0): the with-block
    emits the body; afterwards the builder is positioned after the loop. The index never
    overflows (`nsw`: it stays below `stop` before each step, and steps are far smaller than
    the i64 range). `loop_id` is attached to the back edge as the loop's `llvm.loop`."""
    entry = builder.block
    header = builder.append_basic_block(f"{name}.{LOOP_HEADER}")
    body = builder.append_basic_block(f"{name}.body")
    done = builder.append_basic_block(f"{name}.exit")
    builder.branch(header)
    builder.position_at_end(header)
    index = builder.phi(I64, name=name)
    index.add_incoming(start, entry)
    builder.cbranch(builder.icmp_signed("<", index, stop), body, done)
    builder.position_at_end(body)
    yield index
    increment = I64(step) if isinstance(step, int) else step
    following = builder.add(index, increment, name=f"{name}.next", flags=("nsw",))
    index.add_incoming(following, builder.block)
    back_edge = builder.branch(header)
    if loop_id is not None:
        back_edge.set_metadata("llvm.loop", loop_id)
    builder.position_at_end(done)


def constant_bytes(module: ir.Module, name: str, data: bytes, align: int = 64) -> ir.GlobalVariable:
    """A private constant global holding `data` (at least one byte)."""
    payload = bytearray(data or b"\0")
    array_type = ir.ArrayType(I8, len(payload))
    variable = ir.GlobalVariable(module, array_type, name=name)
    variable.linkage = "private"
    variable.global_constant = True
    variable.unnamed_addr = True
    variable.align = align
    variable.initializer = ir.Constant(array_type, payload)
    variable.type = PTR  # an opaque pointer, like every other buffer address
    return variable


def stack_array(builder: ir.IRBuilder, array_type: ir.Type, name: str, align: int = 8) -> ir.Value:
    """An `alloca` of `array_type`, as an opaque pointer (llvmlite types allocas)."""
    slot = builder.alloca(array_type, name=name)
    slot.align = align
    slot.type = PTR
    return slot


def store_pointers(builder: ir.IRBuilder, array: ir.Value, pointers: Sequence[ir.Value]) -> None:
    """`array[i] = pointers[i]` for a stack array of pointers (a pool task's context)."""
    for position, pointer in enumerate(pointers):
        slot = builder.gep(array, [I64(position)], inbounds=True, source_etype=PTR)
        builder.store(pointer, slot, align=8)


def load_pointers(
    builder: ir.IRBuilder, array: ir.Value, count: int, start: int = 0, name: str = ""
) -> list[ir.Value]:
    """`array[start:start + count]` (named `name0, name1, ...` when `name` is given)."""
    pointers = []
    for index in range(count):
        slot = builder.gep(array, [I64(start + index)], inbounds=True, source_etype=PTR)
        label = f"{name}{index}" if name else ""
        pointers.append(builder.load(slot, typ=PTR, align=8, name=label))
    return pointers


# The thread pool of support/threadpool.c (hidden: linked into every CPU artifact, not exported).
PARALLEL_FOR_SYMBOL = reserved_symbol_name("parallel_for")
NUM_THREADS_SYMBOL = reserved_symbol_name("num_threads")


def call_parallel_for(
    builder: ir.IRBuilder, task: ir.Function, context: ir.Value, count: ir.Value, grain: ir.Value
) -> None:
    """`__tensorc_parallel_for(task, context, count, grain)` (support/threadpool.c)."""
    parallel_for = declare(builder.module, PARALLEL_FOR_SYMBOL, VOID, [PTR, PTR, I64, I64])
    builder.call(parallel_for, [task, context, count, grain])


def c_string(module: ir.Module, name: str, text: str) -> ir.GlobalVariable:
    """A private NUL-terminated string constant."""
    return constant_bytes(module, name, text.encode() + b"\0", align=1)


def combine(
    builder: ir.IRBuilder, kind: str, dtype: DType, accumulator: ir.Value, value: ir.Value
) -> ir.Value:
    """One step of a reduction: `reassoc` on float add/mul (loops.py, Reassociation);
    max/min of floats propagate NaN (`llvm.maximum`/`llvm.minimum`)."""
    if dtype.is_bool:
        if kind == "max":
            return builder.or_(accumulator, value)
        return builder.and_(accumulator, value)
    if dtype.is_float:
        if kind == "add":
            return builder.fadd(accumulator, value, flags=("reassoc",))
        if kind == "mul":
            return builder.fmul(accumulator, value, flags=("reassoc",))
        function = intrinsic(builder.module, f"llvm.{kind}imum", accumulator.type, 2)
        return builder.call(function, [accumulator, value])
    if kind == "add":
        return builder.add(accumulator, value)
    if kind == "mul":
        return builder.mul(accumulator, value)
    function = intrinsic(builder.module, f"llvm.s{kind}", accumulator.type, 2)
    return builder.call(function, [accumulator, value])

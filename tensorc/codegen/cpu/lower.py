"""Lowering of a prepared tensorc module (kernels + leftover `tc` ops) to one LLVM module.

Every function `F` becomes the entry point of docs/abi.md,

    i32 tensorc_F(ptr args, ptr results, ptr dims, ptr error)      (`entry_symbol`)

laid out as

    entry   load the dims, the argument and result pointers; every size the function needs
            is computed here, once (`SizeEmitter`)
    arena   the call's temporaries: one block, on the stack when small and static, else
            `aligned_alloc` (code 3 when it fails, or when the size computed from `dims`
            overflows: it is checked before allocating); slots by liveness (`buffers.py`)
    body    the ops in order: kernels launch their outlined loop nests on the thread pool
            (`loops.py`; full reductions split by `reductions.py`; contractions call the
            packed GEMM with a fused epilogue, `contraction.py`), other ops run inline
            (`tc_ops.py`); returned parameters and duplicates are copied last
    exit    free the arena, return the code (0, or the code of the failure that branched here)

A failure (an index out of range) fills `*error` when it is not NULL through one shared helper
that formats the interpreter's message with `snprintf`, and branches to `exit`. Entry points
have no effect but writing their results, so the runtime may repeat a failed call to read the
message.

Names are derived from function names and counters, never from `id()` or dict order, so the
same module always gives the same LLVM IR text.
"""

from __future__ import annotations

from collections.abc import Sequence

import llvmlite.ir as ir

from tensorc.codegen.artifact import entry_symbol_name
from tensorc.codegen.cpu.buffers import ARENA_ALIGNMENT, BufferPlan, StorageKind, plan_buffers
from tensorc.codegen.cpu.chains import ChainLowering, chain_extends
from tensorc.codegen.cpu.contraction import ContractionLowering, gemm_contraction
from tensorc.codegen.cpu.irutil import (
    I8,
    I32,
    I64,
    PTR,
    VOID,
    UnsupportedError,
    byte_pointer,
    c_string,
    constant_bytes,
    declare,
    emit_memcpy,
    intrinsic,
    itemsize,
    load_pointers,
    memory_type,
    stack_array,
)
from tensorc.codegen.cpu.loops import KernelLowering
from tensorc.codegen.cpu.reductions import SplitReductionLowering, is_full_reduction
from tensorc.codegen.cpu.sizes import MAX_ALLOCATION_BYTES, SizeEmitter
from tensorc.codegen.cpu.tc_ops import LOWERINGS
from tensorc.ir.core import Operation, Value
from tensorc.ir.dialects.func import FuncOp, Module
from tensorc.ir.dialects.kernel import GenericOp
from tensorc.ir.types import TensorType

ENTRY_TYPE = ir.FunctionType(I32, [PTR, PTR, PTR, PTR])
STACK_ARENA_LIMIT = 16 * 1024
REPORT_FUNCTION = "tensorc.report_error"
MESSAGE_BYTES = 256
_ERROR_OFFSETS = {"code": 0, "op": 4, "detail": 8, "message": 40}  # struct tensorc_error


def entry_symbol(function: FuncOp) -> str:
    """`tensorc_F`; the module's other globals are named `F.kernel0`, `tensorc.message0`, ...
    or `__tensorc_...` (docs/abi.md), so no function name can make them clash."""
    return entry_symbol_name(function.sym_name)


def lower_module(
    module: Module, name: str = "tensorc", streaming_stores: bool = False
) -> ir.Module:
    """One LLVM module with an entry point per function of `module` (already prepared by
    `pipeline.prepare_for_lowering`); `streaming_stores` (x86-64 targets) lets kernels write
    large results with non-temporal stores (streaming.py)."""
    state = ModuleState(ir.Module(name=name), streaming_stores)
    for function in module.functions:
        FunctionLowering(state, function).lower()
    return state.module


class ModuleState:
    """What the functions of one LLVM module share: the error helper and message strings."""

    def __init__(self, module: ir.Module, streaming_stores: bool = False) -> None:
        self.module = module
        self.streaming_stores = streaming_stores
        self._messages: dict[str, ir.GlobalVariable] = {}

    def message(self, text: str) -> ir.GlobalVariable:
        if text not in self._messages:
            self._messages[text] = c_string(
                self.module, f"tensorc.message{len(self._messages)}", text
            )
        return self._messages[text]

    def report_function(self) -> ir.Function:
        """`void report(ptr error, i32 code, i32 op, ptr format, i64 a, i64 b, i64 c)`: fill
        `*error` (when not NULL) with the code, the op, details a..c and the message."""
        existing = self.module.globals.get(REPORT_FUNCTION)
        if existing is not None:
            return existing
        params = [PTR, I32, I32, PTR, I64, I64, I64]
        function = ir.Function(self.module, ir.FunctionType(VOID, params), REPORT_FUNCTION)
        function.linkage = "internal"
        function.attributes.add("cold")
        function.attributes.add("noinline")
        error, code, op, text, *details = function.args
        entry = function.append_basic_block("entry")
        fill = function.append_basic_block("fill")
        done = function.append_basic_block("done")
        builder = ir.IRBuilder(entry)
        builder.cbranch(builder.icmp_unsigned("==", error, ir.Constant(PTR, None)), done, fill)
        builder.position_at_end(fill)

        def field(name: str) -> ir.Value:
            return byte_pointer(builder, error, I64(_ERROR_OFFSETS[name]))

        builder.store(code, field("code"), align=4)
        builder.store(op, field("op"), align=4)
        for index, detail in enumerate(details):
            where = byte_pointer(builder, error, I64(_ERROR_OFFSETS["detail"] + 8 * index))
            builder.store(detail, where, align=8)
        snprintf = declare(self.module, "snprintf", I32, [PTR, I64, PTR], var_arg=True)
        builder.call(snprintf, [field("message"), I64(MESSAGE_BYTES), text, *details])
        builder.branch(done)
        builder.position_at_end(done)
        builder.ret_void()
        return function


class FunctionLowering:
    """Lowers one `func.func` to its entry point; also the context `tc_ops` lowerings use."""

    def __init__(self, state: ModuleState, function: FuncOp) -> None:
        self.state = state
        self.module = state.module
        self.function = function
        self.symbols = function.symbols
        self.plan: BufferPlan = plan_buffers(function)
        self.pointers: dict[int, ir.Value] = {}
        self.kernel_count = 0
        self.chain_breaker: KernelLowering | None = None  # built by `_chain_at`, not yet run
        self.constant_count = 0
        self.heap: ir.Value | None = None  # the slot holding the arena's heap pointer

    # ----- the entry point ----------------------------------------------------------------
    def lower(self) -> ir.Function:
        llvm_function = ir.Function(self.module, ENTRY_TYPE, entry_symbol(self.function))
        args, results, dims, error = llvm_function.args
        for argument, name in zip(llvm_function.args, ("args", "results", "dims", "error")):
            argument.name = name
        self.dims, self.error = dims, error
        entry = llvm_function.append_basic_block("entry")
        arena = llvm_function.append_basic_block("arena")
        self.exit = llvm_function.append_basic_block("exit")
        self.prologue = ir.IRBuilder(entry)
        self.sizes = SizeEmitter(self.prologue, dims, self.symbols)
        self.code = self.prologue.alloca(I32, name="code")
        self.prologue.store(I32(0), self.code)
        self.arguments = load_pointers(self.prologue, args, len(self.function.args), name="arg")
        self.results = load_pointers(self.prologue, results,
                                     len(self.function.function_type.results), name="result")
        self.builder = ir.IRBuilder(arena)
        self._allocate_arena()
        body: list[Operation] = []
        positions: list[int] = []  # each op's place in the function (its error reports)
        for position, op in enumerate(self.function.body.ops[:-1]):
            if self._lowered_first(op, position):
                continue
            body.append(op)
            positions.append(position)
        index = 0
        while index < len(body):
            chain = self._chain_at(body, index)
            if len(chain) > 1:
                self._lower_chain(chain)
            elif chain:
                self._launch(chain[0])
            else:
                self._lower_op(body[index], positions[index])
            index += max(len(chain), 1)
        for index, value in self.plan.result_copies:
            emit_memcpy(self.builder, self.results[index], self.pointer(value),
                        self.nbytes(value.type))
        self.builder.branch(self.exit)
        self._emit_exit()
        self.prologue.branch(arena)
        return llvm_function

    def _lowered_first(self, op: Operation, position: int) -> bool:
        """Lower `op` before the function's other ops when that is safe, so that it does not
        split a chain of row kernels (chains.py) it sits between (a `mean`'s size, a scalar
        factor): an op with no operands and one scalar result -- a constant kept in a global
        (no code), or a size or a kernel with an empty domain stored in a stack slot of its
        own instead of an arena slot, which a value live at the start may still hold."""
        if op.operands or len(op.results) != 1:
            return False
        result = op.result
        kind = self.plan.of(result).kind
        if op.name == "tc.constant" and kind is StorageKind.CONSTANT:
            self.define_constant(op)
            return True
        if kind is not StorageKind.ARENA or result.type.shape:
            return False
        if isinstance(op, GenericOp) and op.domain_sizes:
            return False  # a reduction over a domain (reductions.py splits it)
        self.pointers[id(result)] = self.alloca(memory_type(result.type.dtype), name="scalar")
        if isinstance(op, GenericOp):
            self._launch(self._loop_kernel(op, self._next_kernel_name()))
        else:
            self._lower_op(op, position)
        return True

    def _emit_exit(self) -> None:
        builder = ir.IRBuilder(self.exit)
        if self.heap is not None:
            heap = builder.load(self.heap, typ=PTR, name="heap")
            builder.call(declare(self.module, "free", VOID, [PTR]), [heap])
        builder.ret(builder.load(self.code, typ=I32))

    # ----- buffers ------------------------------------------------------------------------
    def _allocate_arena(self) -> None:
        """Emit the arena (in the `arena` block) and the pointers of every value with a
        buffer of its own; leaves the builder in the block where the body starts."""
        plan = self.plan
        for value_id, storage in plan.storage.items():
            if storage.kind is StorageKind.ARGUMENT:
                self.pointers[value_id] = self.arguments[storage.index]
            elif storage.kind is StorageKind.RESULT:
                self.pointers[value_id] = self.results[storage.index]
        if not plan.slots:
            return
        static = [_static_slot_bytes(slot.types) for slot in plan.slots]
        if None not in static and sum(static) <= STACK_ARENA_LIMIT:  # type: ignore[arg-type]
            total_bytes = max(sum(static), 1)  # type: ignore[arg-type]
            base = stack_array(self.prologue, ir.ArrayType(I8, total_bytes), "arena",
                               ARENA_ALIGNMENT)
            offsets = [I64(sum(static[:i])) for i in range(len(static))]  # type: ignore[arg-type]
            self._place_slots(base, offsets)
            return
        offset_values, total = self._slot_offsets()
        # Sizes come from `dims`: one that wrapped must never reach the allocator.
        too_large = self.sizes.checked.too_large(total)
        self.heap = self.alloca(PTR, "heap.slot")
        self.prologue.store(ir.Constant(PTR, None), self.heap)
        self.fail_if(too_large, 3, -1, "out of memory: more than %lld bytes of temporaries",
                     [I64(MAX_ALLOCATION_BYTES)])
        allocate = declare(self.module, "aligned_alloc", PTR, [I64, I64])
        heap = self.builder.call(allocate, [I64(ARENA_ALIGNMENT), total], name="heap")
        self.builder.store(heap, self.heap)
        failed = self.builder.and_(
            self.builder.icmp_unsigned("==", heap, ir.Constant(PTR, None)),
            self.builder.icmp_unsigned("!=", total, I64(0)),
        )
        self.fail_if(failed, 3, -1, "out of memory: %lld bytes of temporaries", [total])
        self._place_slots(heap, offset_values)

    def _slot_offsets(self) -> tuple[list[ir.Value], ir.Value]:
        """Each slot's offset and the arena's size, in bytes, computed in the prologue with
        overflow checks (`SizeEmitter.checked`): unsigned, so a slot's size is the `umax`."""
        sizes = self.sizes
        umax = intrinsic(self.module, "llvm.umax", I64, 2)
        offsets: list[ir.Value] = []
        total: ir.Value = I64(0)
        for slot in self.plan.slots:
            offsets.append(total)
            size: ir.Value | None = None
            for tensor_type in slot.types:
                nbytes = sizes.byte_size(tensor_type.shape, itemsize(tensor_type.dtype))
                rounded = _round_up(sizes, nbytes, ARENA_ALIGNMENT)
                size = rounded if size is None else sizes.builder.call(umax, [size, rounded])
            total = sizes.checked.add(total, size)
        return offsets, total

    def _place_slots(self, base: ir.Value, offsets: Sequence[ir.Value]) -> None:
        slot_pointers = [byte_pointer(self.builder, base, offset) for offset in offsets]
        for value_id, storage in self.plan.storage.items():
            if storage.kind is StorageKind.ARENA:
                self.pointers[value_id] = slot_pointers[storage.index]

    def pointer(self, value: Value) -> ir.Value:
        """The address of `value`'s buffer."""
        storage = self.plan.of(value)
        if storage.kind is StorageKind.ALIAS and storage.source is not None:
            return self.pointer(storage.source)
        return self.pointers[id(value)]

    def is_alias(self, value: Value) -> bool:
        return self.plan.of(value).kind is StorageKind.ALIAS

    def nbytes(self, tensor_type: TensorType) -> ir.Value:
        count = self.sizes.product(tensor_type.shape)
        size = itemsize(tensor_type.dtype)
        if isinstance(count, ir.Constant):
            return I64(count.constant * size)
        return self.sizes.builder.mul(count, I64(size))

    def alloca(self, value_type: ir.Type, name: str) -> ir.Value:
        return self.prologue.alloca(value_type, name=name)

    def define_constant(self, op: Operation) -> None:
        """A `tc.constant`'s private global; copied when its value is returned."""
        name = f"{self.function.sym_name}.constant{self.constant_count}"
        self.constant_count += 1
        data = op.value.astype(op.value.dtype.newbyteorder("<"), copy=False).tobytes()
        variable = constant_bytes(self.module, name, data)
        if self.plan.of(op.result).kind is StorageKind.CONSTANT:
            self.pointers[id(op.result)] = variable
            return
        emit_memcpy(self.builder, self.pointer(op.result), variable, I64(len(data)))

    # ----- failures -----------------------------------------------------------------------
    def fail_if(
        self, condition: ir.Value, code: int, op_position: int, message: str,
        details: Sequence[ir.Value],
    ) -> None:
        """Where `condition` holds: report `code` with `message` (a printf format over the
        `details`, at most three i64) and return it from the entry point."""
        failed = self.builder.append_basic_block("fail")
        passed = self.builder.append_basic_block("ok")
        branch = self.builder.cbranch(condition, failed, passed)
        branch.set_weights([1, 1 << 20])
        self.builder.position_at_end(failed)
        values = list(details) + [I64(0)] * (3 - len(details))
        self.builder.call(
            self.state.report_function(),
            [self.error, I32(code), I32(op_position), self.state.message(message), *values],
        )
        self.builder.store(I32(code), self.code)
        self.builder.branch(self.exit)
        self.builder.position_at_end(passed)

    # ----- ops ----------------------------------------------------------------------------
    def _lower_op(self, op: Operation, position: int) -> None:
        if isinstance(op, GenericOp):
            self._lower_kernel(op, position)
            return
        lowering = LOWERINGS.get(op.name)
        if lowering is None:
            raise UnsupportedError(
                f"{op.name} is not lowered by the CPU backend (fusion should have made it a "
                "kernel.generic)"
            )
        lowering(self, op, position)

    def _next_kernel_name(self, ahead: int = 0) -> str:
        """The name of the kernel `ahead` kernels after the next one to be run."""
        return f"{self.function.sym_name}.kernel{self.kernel_count + ahead}"

    def _buffers(self, op: GenericOp) -> list[ir.Value]:
        """The buffers of `op`'s operands, then of its results."""
        return [self.pointer(v) for v in (*op.inputs, *op.results)]

    def _kernel_context(self, op: GenericOp) -> tuple[list[ir.Value], ir.Value]:
        """The buffers of `op`'s operands and results, and a context array for them + dims."""
        self.kernel_count += 1
        buffers = self._buffers(op)
        return buffers, stack_array(self.prologue, ir.ArrayType(PTR, len(buffers) + 1), "ctx")

    def _launch(self, kernel: KernelLowering) -> None:
        """Run a loop-nest (or split-reduction) kernel built for the next kernel name."""
        buffers, context = self._kernel_context(kernel.op)
        kernel.emit_launch(self.builder, self.sizes, self.dims, buffers, context)

    def _lower_kernel(self, op: GenericOp, position: int) -> None:
        """Contractions and full reductions (`_chain_at` takes the other kernels)."""
        name = self._next_kernel_name()
        contraction = gemm_contraction(op)
        if contraction is None:
            self._launch(SplitReductionLowering(self.module, name, op, self.symbols))
            return
        gemm = ContractionLowering(self.module, name, op, self.symbols, contraction)
        buffers, context = self._kernel_context(op)
        status = gemm.emit_launch(self.builder, self.sizes, self.dims, buffers, context)
        failed = self.builder.icmp_signed("!=", status, I32(0))
        self.fail_if(failed, 3, position, "out of memory for a matrix product", [])

    # ----- chains of row kernels (chains.py) ------------------------------------------------
    def _chain_at(self, body: Sequence[Operation], position: int) -> list[KernelLowering]:
        """The loop-nest kernel at `body[position]` and the row kernels that chain after it
        (chains.py); empty when that op is not a loop-nest kernel."""
        kernels: list[KernelLowering] = []
        for op in body[position:]:
            if not isinstance(op, GenericOp) or gemm_contraction(op) is not None:
                break
            if is_full_reduction(op):
                break
            kernel = self._loop_kernel(op, self._next_kernel_name(len(kernels)))
            if kernels and not chain_extends(kernels, kernel, self.buffer_key):
                self.chain_breaker = kernel  # the next chain starts with it, under this name
                break
            kernels.append(kernel)
        return kernels

    def _loop_kernel(self, op: GenericOp, name: str) -> KernelLowering:
        """The loop-nest lowering of `op`: the one that ended the last chain, or a new one."""
        kernel, self.chain_breaker = self.chain_breaker, None
        if kernel is not None and kernel.op is op:
            return kernel
        return KernelLowering(self.module, name, op, self.symbols, self._streamable(op))

    def _streamable(self, op: GenericOp) -> list[int]:
        """The outputs of `op` written straight into the caller's result arrays, when this
        module may stream stores (streaming.py)."""
        if not self.state.streaming_stores:
            return []
        return [index for index, result in enumerate(op.results)
                if self.plan.of(result).kind is StorageKind.RESULT]

    def _lower_chain(self, kernels: Sequence[KernelLowering]) -> None:
        name = f"{self._next_kernel_name()}.chain"
        self.kernel_count += len(kernels)
        buffers = [self._buffers(kernel.op) for kernel in kernels]
        total = 2 + sum(len(b) for b in buffers)
        context = stack_array(self.prologue, ir.ArrayType(PTR, total), "ctx")
        chain = ChainLowering(self.module, name, kernels)
        chain.emit_launch(self.builder, self.sizes, self.dims, buffers, context)

    def buffer_key(self, value: Value) -> int:
        """Identifies `value`'s buffer: equal keys, the same memory (values sharing an
        argument, a result or an arena slot share its one pointer value)."""
        return id(self.pointer(value))


def _static_slot_bytes(types: Sequence[TensorType]) -> int | None:
    sizes = []
    for tensor_type in types:
        shape = tensor_type.static_shape
        if shape is None:
            return None
        count = 1
        for extent in shape:
            count *= max(extent, 0)
        sizes.append(-(-count * itemsize(tensor_type.dtype) // ARENA_ALIGNMENT) * ARENA_ALIGNMENT)
    return max(sizes, default=0)


def _round_up(sizes: SizeEmitter, value: ir.Value, multiple: int) -> ir.Value:
    """`value` rounded up to a multiple of `multiple` (a power of two), overflow checked."""
    return sizes.builder.and_(sizes.checked.add(value, I64(multiple - 1)), I64(-multiple))

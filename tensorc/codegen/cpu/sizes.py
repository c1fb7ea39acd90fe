"""Symbolic sizes as run-time values: `DimExpr` -> `i64` instructions in a function's prologue.

Every LLVM function the backend emits (an entry point, a kernel) starts with a prologue block
that loads the symbolic dimensions from the `dims` array and computes, once, every size the
function asks for. Values are memoised per expression, so `N*K` is computed once however
often it is used, and since the prologue dominates everything, any later block may use them.

Semantics follow `DimExpr.evaluate`: `floordiv` floors and gives 0 for a zero divisor, `min`
and `max` are signed. A *dimension's* value is its expression clamped at zero (`extent`), as
in `DimExpr.extent`; raw values (`value`) are used for offsets and `tc.dim_size`.

Byte sizes of buffers the function allocates itself (`byte_size`, and sums through `checked`)
are computed apart, with overflow checks: dim expressions with signed, products and sums with
unsigned `*.with.overflow` intrinsics. Any overflow sets `checked.overflow` (an `i1`), which the
caller tests once, before allocating (with `MAX_ALLOCATION_BYTES`), so a wrapped size never
reaches the allocator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import llvmlite.ir as ir

from tensorc.codegen.cpu.irutil import I1, I64, intrinsic
from tensorc.ir.dims import DimExpr, DimOp

# The largest block a compiled function allocates (arena, GEMM scratch); larger fails with code 3.
MAX_ALLOCATION_BYTES = (1 << 62) - 1


class SizeEmitter:
    """Computes sizes in the prologue of one function (`builder` is positioned there)."""

    def __init__(self, builder: ir.IRBuilder, dims: ir.Value, symbols: Sequence[str]) -> None:
        self.builder = builder
        self.dims = dims
        self.symbols = list(symbols)
        self._symbol_values: dict[str, ir.Value] = {}
        self._values: dict[DimExpr, ir.Value] = {}
        self._extents: dict[DimExpr, ir.Value] = {}
        self._products: dict[tuple[DimExpr, ...], ir.Value] = {}
        self._checked_values: dict[DimExpr, ir.Value] = {}
        self._byte_sizes: dict[tuple, ir.Value] = {}
        self.checked = CheckedArithmetic(builder)

    # ----- public ---------------------------------------------------------------------------
    def value(self, expr: DimExpr | int) -> ir.Value:
        """The expression's value (not clamped)."""
        expr = DimExpr.of(expr)
        if expr.is_const:
            return I64(expr.value or 0)
        if expr not in self._values:
            self._values[expr] = self._evaluate(expr)
        return self._values[expr]

    def extent(self, expr: DimExpr | int) -> ir.Value:
        """The expression as a dimension: its value clamped at zero."""
        expr = DimExpr.of(expr)
        if expr.is_const:
            return I64(max(expr.value or 0, 0))
        if expr not in self._extents:
            smax = intrinsic(self.builder.module, "llvm.smax", I64, 2)
            self._extents[expr] = self.builder.call(smax, [self.value(expr), I64(0)])
        return self._extents[expr]

    def product(self, dims: Iterable[DimExpr | int]) -> ir.Value:
        """The product of the extents of `dims` (the element count of a shape)."""
        key = tuple(sorted((DimExpr.of(d) for d in dims), key=str))
        constant = 1
        symbolic: list[DimExpr] = []
        for dim in key:
            if dim.is_const:
                constant *= max(dim.value or 0, 0)
            else:
                symbolic.append(dim)
        if not symbolic or constant == 0:
            return I64(constant)
        cache_key = tuple(symbolic) + (DimExpr.const(constant),)
        if cache_key not in self._products:
            total: ir.Value = self.extent(symbolic[0])
            for dim in symbolic[1:]:
                total = self.builder.mul(total, self.extent(dim))
            if constant != 1:
                total = self.builder.mul(total, I64(constant))
            self._products[cache_key] = total
        return self._products[cache_key]

    def strides(self, shape: Sequence[DimExpr]) -> list[ir.Value]:
        """Row-major element strides of a contiguous tensor of `shape`."""
        return [self.product(shape[axis + 1 :]) for axis in range(len(shape))]

    # ----- overflow-checked byte sizes ------------------------------------------------------
    def byte_size(self, shape: Sequence[DimExpr | int], item_bytes: int) -> ir.Value:
        """`item_bytes` times the product of the extents of `shape`, as an unsigned `i64`;
        sets `checked.overflow` where a dim expression, the product or the size does not fit."""
        dims = tuple(sorted((DimExpr.of(d) for d in shape), key=str))
        key = (dims, item_bytes)
        if key not in self._byte_sizes:
            total: ir.Value = I64(item_bytes)
            for dim in dims:
                total = self.checked.mul(total, self._checked_extent(dim))
            self._byte_sizes[key] = total
        return self._byte_sizes[key]

    def _checked_extent(self, expr: DimExpr) -> ir.Value:
        if expr.is_const:
            return I64(max(expr.value or 0, 0))
        smax = intrinsic(self.builder.module, "llvm.smax", I64, 2)
        return self.builder.call(smax, [self._checked_value(expr), I64(0)])

    def _checked_value(self, expr: DimExpr) -> ir.Value:
        """The expression's value with signed overflow checks on its sums and products."""
        if expr.is_const:
            return I64(expr.value or 0)
        if expr not in self._checked_values:
            self._checked_values[expr] = self._evaluate(
                expr,
                self.checked.smul,
                self.checked.sadd,
                self._checked_value,
            )
        return self._checked_values[expr]

    # ----- evaluation -----------------------------------------------------------------------
    def _evaluate(
        self,
        expr: DimExpr,
        mul: Callable[[ir.Value, ir.Value], ir.Value] | None = None,
        add: Callable[[ir.Value, ir.Value], ir.Value] | None = None,
        value: Callable[[DimExpr], ir.Value] | None = None,
    ) -> ir.Value:
        mul = mul or self.builder.mul
        add = add or self.builder.add
        total: ir.Value | None = None
        for monomial, coefficient in expr.terms:
            term: ir.Value | None = None
            for atom in monomial:
                factor = self._atom(atom, value or self.value)
                term = factor if term is None else mul(term, factor)
            if term is None:
                term = I64(coefficient)
            elif coefficient != 1:
                term = mul(term, I64(coefficient))
            total = term if total is None else add(total, term)
        return total if total is not None else I64(0)

    def _atom(self, atom: str | DimOp, value: Callable[[DimExpr], ir.Value]) -> ir.Value:
        if isinstance(atom, str):
            return self._symbol(atom)
        args = [value(a) for a in atom.args]
        if atom.kind == "floordiv":
            return floor_divide(self.builder, args[0], args[1])
        combine = intrinsic(self.builder.module, f"llvm.s{atom.kind}", I64, 2)
        result = args[0]
        for arg in args[1:]:
            result = self.builder.call(combine, [result, arg])
        return result

    def _symbol(self, name: str) -> ir.Value:
        if name not in self._symbol_values:
            if name not in self.symbols:
                raise KeyError(f"size symbol '{name}' is not bound by the function's parameters")
            position = self.symbols.index(name)
            pointer = self.builder.gep(self.dims, [I64(position)], inbounds=True, source_etype=I64)
            self._symbol_values[name] = self.builder.load(pointer, typ=I64, align=8, name=name)
        return self._symbol_values[name]


class CheckedArithmetic:
    """`i64` sums and products through the `*.with.overflow` intrinsics: every overflow is
    OR-ed into `overflow` (an `i1`, a constant while nothing could overflow), for the caller
    to test once. Constant operands fold, overflow included."""

    def __init__(self, builder: ir.IRBuilder) -> None:
        self.builder = builder
        self.overflow: ir.Value = I1(0)

    def mul(self, lhs: ir.Value, rhs: ir.Value) -> ir.Value:
        """`lhs * rhs`, unsigned."""
        return self._apply("umul", lhs, rhs, lambda a, b: a * b)

    def add(self, lhs: ir.Value, rhs: ir.Value) -> ir.Value:
        """`lhs + rhs`, unsigned."""
        return self._apply("uadd", lhs, rhs, lambda a, b: a + b)

    def smul(self, lhs: ir.Value, rhs: ir.Value) -> ir.Value:
        """`lhs * rhs`, signed."""
        return self._apply("smul", lhs, rhs, lambda a, b: a * b)

    def sadd(self, lhs: ir.Value, rhs: ir.Value) -> ir.Value:
        """`lhs + rhs`, signed."""
        return self._apply("sadd", lhs, rhs, lambda a, b: a + b)

    def too_large(self, size: ir.Value) -> ir.Value:
        """An `i1`: whether `size` (unsigned bytes) overflowed or passes `MAX_ALLOCATION_BYTES`."""
        limit = self.builder.icmp_unsigned(">", size, I64(MAX_ALLOCATION_BYTES))
        return self.builder.or_(self.overflow, limit)

    def _apply(
        self, kind: str, lhs: ir.Value, rhs: ir.Value, fold: Callable[[int, int], int]
    ) -> ir.Value:
        signed = kind[0] == "s"
        if isinstance(lhs, ir.Constant) and isinstance(rhs, ir.Constant):
            result = fold(_constant(lhs, signed), _constant(rhs, signed))
            low, high = (-(1 << 63), (1 << 63) - 1) if signed else (0, (1 << 64) - 1)
            if low <= result <= high:
                return I64(result - (1 << 64) if result >= 1 << 63 else result)
            self._flag(I1(1))
            return I64(0)
        pair = getattr(self.builder, f"{kind}_with_overflow")(lhs, rhs)
        self._flag(self.builder.extract_value(pair, 1))
        return self.builder.extract_value(pair, 0)

    def _flag(self, bit: ir.Value) -> None:
        if isinstance(self.overflow, ir.Constant) and not self.overflow.constant:
            self.overflow = bit
        elif not isinstance(bit, ir.Constant) or bit.constant:
            self.overflow = self.builder.or_(self.overflow, bit)


def _constant(value: ir.Constant, signed: bool) -> int:
    """The integer of an `i64` constant, read as signed or unsigned."""
    number = int(value.constant) & ((1 << 64) - 1)
    return number - (1 << 64) if signed and number >= 1 << 63 else number


def floor_divide(builder: ir.IRBuilder, lhs: ir.Value, rhs: ir.Value) -> ir.Value:
    """Python's `lhs // rhs` on `i64`, with 0 for a zero divisor (never traps)."""
    zero, one = I64(0), I64(1)
    divisor_zero = builder.icmp_signed("==", rhs, zero)
    safe = builder.select(divisor_zero, one, rhs)
    quotient = builder.sdiv(lhs, safe)
    remainder = builder.sub(lhs, builder.mul(quotient, safe))
    signs_differ = builder.icmp_signed("<", builder.xor(remainder, safe), zero)
    adjust = builder.and_(builder.icmp_signed("!=", remainder, zero), signs_differ)
    floored = builder.sub(quotient, builder.zext(adjust, I64))
    return builder.select(divisor_zero, zero, floored)

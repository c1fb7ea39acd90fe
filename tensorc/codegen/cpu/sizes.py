"""Symbolic sizes as run-time values: `DimExpr` -> `i64` instructions in a function's prologue.

Every LLVM function the backend emits (an entry point, a kernel) starts with a prologue block
that loads the symbolic dimensions from the `dims` array and computes, once, every size the
function asks for. Values are memoised per expression, so `N*K` is computed once however
often it is used, and since the prologue dominates everything, any later block may use them.

Semantics follow `DimExpr.evaluate`: `floordiv` floors and gives 0 for a zero divisor, `min`
and `max` are signed. A *dimension's* value is its expression clamped at zero (`extent`), as
in `DimExpr.extent`; raw values (`value`) are used for offsets and `tc.dim_size`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import llvmlite.ir as ir

from tensorc.codegen.cpu.irutil import I64, intrinsic
from tensorc.ir.dims import DimExpr, DimOp


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

    # ----- evaluation -----------------------------------------------------------------------
    def _evaluate(self, expr: DimExpr) -> ir.Value:
        builder = self.builder
        total: ir.Value | None = None
        for monomial, coefficient in expr.terms:
            term: ir.Value | None = None
            for atom in monomial:
                factor = self._atom(atom)
                term = factor if term is None else builder.mul(term, factor)
            if term is None:
                term = I64(coefficient)
            elif coefficient != 1:
                term = builder.mul(term, I64(coefficient))
            total = term if total is None else builder.add(total, term)
        return total if total is not None else I64(0)

    def _atom(self, atom: str | DimOp) -> ir.Value:
        if isinstance(atom, str):
            return self._symbol(atom)
        args = [self.value(a) for a in atom.args]
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

"""An exact `fmod` for the GPU, and the IR builder that uses it for `frem`.

NVPTX lowers LLVM's `frem` to `x - trunc(x / y) * y`, which is not exact (a large quotient
loses the remainder entirely), while NumPy's `%` and `//` on floats, and the CPU backend,
use C's exact `fmod`. `GpuIRBuilder.frem` calls `tensorc.fmod.f32` / `.f64` instead: musl's
bit-serial algorithm (subnormals normalised, one shift-and-subtract step per bit of
exponent difference, the result rebuilt with the sign of x), exact for every input, with
fmod's special cases (y == 0, x infinite or a NaN operand -> NaN; |x| < |y| -> x; an exact
multiple -> a zero of x's sign). `half` is computed in `float` (exactly representable).
"""

from __future__ import annotations

import llvmlite.ir as ir

F16, F32, F64 = ir.HalfType(), ir.FloatType(), ir.DoubleType()


class GpuIRBuilder(ir.IRBuilder):
    """An IRBuilder whose `frem` is the exact `fmod` (see the module documentation)."""

    def frem(self, lhs: ir.Value, rhs: ir.Value, name: str = "", flags=()) -> ir.Value:
        if lhs.type == F16:
            wide = self.frem(self.fpext(lhs, F32), self.fpext(rhs, F32))
            return self.fptrunc(wide, F16, name=name)
        if lhs.type not in (F32, F64):
            return super().frem(lhs, rhs, name=name, flags=flags)
        return self.call(fmod_function(self.module, lhs.type), [lhs, rhs], name=name)


def fmod_function(module: ir.Module, float_type: ir.Type) -> ir.Function:
    """`float tensorc.fmod.f32(float x, float y)` (or f64), defined once per module."""
    bits = 64 if float_type == F64 else 32
    name = f"tensorc.fmod.f{bits}"
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    function = ir.Function(module, ir.FunctionType(float_type, [float_type] * 2), name)
    function.linkage = "internal"
    _FmodBuilder(function, float_type, bits).emit()
    return function


class _FmodBuilder:
    def __init__(self, function: ir.Function, float_type: ir.Type, bits: int) -> None:
        self.function = function
        self.float_type = float_type
        self.int = ir.IntType(bits)
        self.mantissa = 52 if bits == 64 else 23
        self.exponent_mask = (1 << (bits - 1 - self.mantissa)) - 1
        self.bits = bits
        self.b = ir.IRBuilder(function.append_basic_block("entry"))

    def const(self, value: int) -> ir.Constant:
        return ir.Constant(self.int, value)

    def block(self, name: str) -> ir.Block:
        return self.function.append_basic_block(name)

    def emit(self) -> None:
        b, x, y = self.b, *self.function.args
        ux, uy = b.bitcast(x, self.int), b.bitcast(y, self.int)
        sign_bit = self.const(1 << (self.bits - 1))
        ex = b.and_(b.lshr(ux, self.const(self.mantissa)), self.const(self.exponent_mask))
        ey = b.and_(b.lshr(uy, self.const(self.mantissa)), self.const(self.exponent_mask))
        sx = b.and_(ux, sign_bit)
        ax, ay = b.shl(ux, self.const(1)), b.shl(uy, self.const(1))  # magnitudes, shifted
        invalid = b.or_(b.or_(b.icmp_unsigned("==", ay, self.const(0)),
                              b.fcmp_unordered("uno", y, y)),
                        b.icmp_unsigned("==", ex, self.const(self.exponent_mask)))
        nan, small, main = self.block("nan"), self.block("small"), self.block("main")
        b.cbranch(invalid, nan, small)
        b.position_at_end(nan)
        product = b.fmul(x, y)
        b.ret(b.fdiv(product, product))
        b.position_at_end(small)
        zero, keep = self.block("zero"), self.block("keep")
        b.cbranch(b.icmp_unsigned("<=", ax, ay), keep, main)
        b.position_at_end(keep)
        b.cbranch(b.icmp_unsigned("==", ax, ay), zero, self.block_returning(x))
        b.position_at_end(zero)
        b.ret(b.fmul(ir.Constant(self.float_type, 0.0), x))
        b.position_at_end(main)
        mx, ex = self.normalise(ux, ex, "x")
        my, ey = self.normalise(uy, ey, "y")
        mx, ex = self.reduce(mx, my, ex, ey, zero)
        self.finish(mx, ex, sx)

    def block_returning(self, value: ir.Value) -> ir.Block:
        block = self.block("return")
        ir.IRBuilder(block).ret(value)
        return block

    def normalise(self, u: ir.Value, e: ir.Value, tag: str) -> tuple[ir.Value, ir.Value]:
        """(significand with its leading one at bit `mantissa`, unbiased-able exponent)."""
        b = self.b
        one = self.const(1 << self.mantissa)
        field = b.and_(u, self.const((1 << self.mantissa) - 1))
        normal = b.or_(field, one)
        subnormal_block, join = self.block(f"sub{tag}"), self.block(f"norm{tag}")
        start = b.block
        b.cbranch(b.icmp_unsigned("==", e, self.const(0)), subnormal_block, join)
        b.position_at_end(subnormal_block)
        m, k = self.shift_to_leading_one(field, self.const(1), f"sub{tag}")
        done = b.block
        b.branch(join)
        b.position_at_end(join)
        significand = b.phi(self.int)
        significand.add_incoming(normal, start)
        significand.add_incoming(m, done)
        exponent = b.phi(self.int)
        exponent.add_incoming(e, start)
        exponent.add_incoming(k, done)
        return significand, exponent

    def shift_to_leading_one(self, m: ir.Value, e: ir.Value,
                             tag: str) -> tuple[ir.Value, ir.Value]:
        """`while (!(m & 1 << mantissa)) { m <<= 1; e--; }`; returns the final (m, e) with
        the builder after the loop."""
        b = self.b
        one = self.const(1 << self.mantissa)
        entry = b.block
        header, body, done = self.block(f"{tag}.h"), self.block(f"{tag}.b"), self.block(f"{tag}.d")
        b.branch(header)
        b.position_at_end(header)
        shifted = b.phi(self.int)
        exponent = b.phi(self.int)
        shifted.add_incoming(m, entry)
        exponent.add_incoming(e, entry)
        b.cbranch(b.icmp_unsigned("==", b.and_(shifted, one), self.const(0)), body, done)
        b.position_at_end(body)
        shifted.add_incoming(b.shl(shifted, self.const(1)), body)
        exponent.add_incoming(b.sub(exponent, self.const(1)), body)
        b.branch(header)
        b.position_at_end(done)
        return shifted, exponent

    def reduce(self, mx: ir.Value, my: ir.Value, ex: ir.Value, ey: ir.Value,
               zero: ir.Block) -> tuple[ir.Value, ir.Value]:
        """for (; ex > ey; ex--) { mx -= my if it fits; mx <<= 1 }; then once more."""
        b = self.b
        entry = b.block
        header, body, last = self.block("mod.h"), self.block("mod.b"), self.block("mod.last")
        b.branch(header)
        b.position_at_end(header)
        m = b.phi(self.int)
        e = b.phi(self.int)
        m.add_incoming(mx, entry)
        e.add_incoming(ex, entry)
        b.cbranch(b.icmp_signed(">", e, ey), body, last)
        b.position_at_end(body)
        step = self.subtract(m, my, zero)
        m.add_incoming(b.shl(step, self.const(1)), b.block)
        e.add_incoming(b.sub(e, self.const(1)), b.block)
        b.branch(header)
        b.position_at_end(last)
        return self.subtract(m, my, zero), e

    def subtract(self, m: ir.Value, my: ir.Value, zero: ir.Block) -> ir.Value:
        """m - my when it is not negative (a zero difference returns a signed zero)."""
        b = self.b
        difference = b.sub(m, my)
        fits = b.icmp_signed(">=", difference, self.const(0))
        exact = b.and_(fits, b.icmp_unsigned("==", difference, self.const(0)))
        go_on = self.block("sub.ok")
        b.cbranch(exact, zero, go_on)
        b.position_at_end(go_on)
        return b.select(fits, difference, m)

    def finish(self, m: ir.Value, e: ir.Value, sx: ir.Value) -> None:
        """Renormalise (shift left until the leading one is back), rebuild, apply the sign."""
        b = self.b
        one = self.const(1 << self.mantissa)
        mm, ee = self.shift_to_leading_one(m, e, "fix")
        normal = b.or_(b.sub(mm, one), b.shl(ee, self.const(self.mantissa)))
        shift = b.sub(self.const(1), ee)
        subnormal = b.lshr(mm, b.select(b.icmp_signed(">", ee, self.const(0)),
                                        self.const(0), shift))
        bits = b.select(b.icmp_signed(">", ee, self.const(0)), normal, subnormal)
        b.ret(b.bitcast(b.or_(bits, sx), self.float_type))


"""Scalar `tc` ops of kernel bodies -> LLVM instructions, with the interpreter's semantics.

The reference is `tensorc.interp.kernels_elementwise` (NumPy). The points where a plain LLVM
instruction would differ, and what is emitted instead:

- integer `floordiv`/`mod` floor and take the divisor's sign; a zero divisor gives 0 and
  `MIN // -1` wraps, with no trap (the divisor is made safe before `sdiv`/`srem`);
- float `floordiv`/`mod` follow NumPy's `npy_divmod` step by step (`fmod`, then the sign
  fix-up and the snap of the quotient);
- float -> int casts truncate, saturate and send NaN to 0 (`llvm.fptosi.sat`); anything ->
  bool is `x != 0` (NaN is true);
- `maximum`/`minimum` propagate NaN (`llvm.maximum`); `relu(NaN)` is NaN;
- integer `pow` is exponentiation by squaring (wrapping), and a negative exponent gives
  `1 // base**-e` truncated toward zero, as the interpreter defines it;
- integer `add`/`sub`/`mul`/`neg`/`abs` wrap (no `nsw`).

Body float arithmetic carries no fast-math flags: fused kernels round like the unfused ops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import llvmlite.ir as ir

from tensorc.codegen.cpu.irutil import I1, UnsupportedError, declare, intrinsic, register_type
from tensorc.codegen.cpu.mathfns import emit_math
from tensorc.codegen.cpu.sizes import SizeEmitter
from tensorc.ir.core import Operation
from tensorc.ir.dtypes import DType

# Ops that lower to a polynomial, a libm call or a divider: many cycles per element, where the
# rest cost about one (`loops.body_cost`, `loops.is_compute_bound`).
EXPENSIVE_OPS = frozenset(
    {"tc.exp", "tc.log", "tc.log1p", "tc.expm1", "tc.sin", "tc.cos", "tc.tanh", "tc.erf",
     "tc.sigmoid", "tc.softplus", "tc.gelu", "tc.pow", "tc.div", "tc.floordiv", "tc.mod",
     "tc.sqrt", "tc.rsqrt"}
)  # fmt: skip
_MATH_UNARY = {
    "tc.exp": "exp",
    "tc.log": "log",
    "tc.log1p": "log1p",
    "tc.expm1": "expm1",
    "tc.sqrt": "sqrt",
    "tc.sin": "sin",
    "tc.cos": "cos",
    "tc.tanh": "tanh",
    "tc.erf": "erf",
    "tc.sigmoid": "sigmoid",
}
_FLOAT_PREDICATES = {"tc.lt": "<", "tc.le": "<=", "tc.gt": ">", "tc.ge": ">=", "tc.eq": "=="}
_INT_PREDICATES = {**_FLOAT_PREDICATES, "tc.ne": "!="}


def convert(builder: ir.IRBuilder, value: ir.Value, source: DType, target: DType) -> ir.Value:
    """`tc.cast` from `source` to `target` (see the module documentation)."""
    if source == target:
        return value
    target_type = register_type(target)
    if target.is_bool:
        if source.is_float:
            return builder.fcmp_unordered("!=", value, ir.Constant(value.type, 0.0))
        return builder.icmp_signed("!=", value, ir.Constant(value.type, 0))
    if source.is_bool:
        if target.is_float:
            return builder.uitofp(value, target_type)
        return builder.zext(value, target_type)
    if source.is_float and target.is_float:
        return _float_resize(builder, value, target_type)
    if source.is_float:
        name = f"llvm.fptosi.sat.i{target_type.width}.{_suffix(value.type)}"
        return builder.call(declare(builder.module, name, target_type, [value.type]), [value])
    if target.is_float:
        return builder.sitofp(value, target_type)
    if target_type.width > value.type.width:
        return builder.sext(value, target_type)
    return builder.trunc(value, target_type)


def _float_resize(builder: ir.IRBuilder, value: ir.Value, target: ir.Type) -> ir.Value:
    widths = {"half": 16, "float": 32, "double": 64}
    if widths[str(target)] > widths[str(value.type)]:
        return builder.fpext(value, target)
    return builder.fptrunc(value, target)


def _suffix(value_type: ir.Type) -> str:
    return {"half": "f16", "float": "f32", "double": "f64"}[str(value_type)]


class ScalarLowering:
    """Emits body ops at `builder`'s position. `loop_index(dim)` gives the `i64` index of a
    domain dim; `sizes` evaluates size expressions (`tc.dim_size`)."""

    def __init__(
        self,
        builder: ir.IRBuilder,
        sizes: SizeEmitter,
        loop_index: Callable[[int], ir.Value] | None = None,
    ) -> None:
        self.builder = builder
        self.sizes = sizes
        self.loop_index = loop_index

    def emit(self, op: Operation, operands: Sequence[ir.Value]) -> ir.Value:
        name = op.name
        result = op.result.type.dtype
        if name == "kernel.index":
            if self.loop_index is None:
                raise UnsupportedError("kernel.index outside a kernel")
            return convert(self.builder, self.loop_index(op.dim), DType.I64, result)
        if name == "tc.constant":
            return constant(result, op.value.reshape(()).item())
        if name == "tc.dim_size":
            return convert(self.builder, self.sizes.value(op.value), DType.I64, result)
        if name == "tc.cast":
            return convert(self.builder, operands[0], op.x.type.dtype, result)
        if name == "tc.select":
            return self.builder.select(*operands)
        if name == "tc.stop_gradient":
            return operands[0]
        operand = op.operands[0].type.dtype
        if result.is_float and operand != result:  # a float op on promoted integers
            operands = [convert(self.builder, v, operand, result) for v in operands]
            operand = result
        if operand.is_bool:
            return self._boolean(name, operands)
        if operand.is_float:
            return self._float(op, operands)
        return self._integer(name, operands, operand)

    # ----- bool ---------------------------------------------------------------------------
    def _boolean(self, name: str, operands: Sequence[ir.Value]) -> ir.Value:
        b = self.builder
        if name == "tc.not":
            return b.xor(operands[0], I1(1))
        if name == "tc.and":
            return b.and_(*operands)
        if name == "tc.or":
            return b.or_(*operands)
        if name in ("tc.eq", "tc.ne"):
            return b.icmp_unsigned(_INT_PREDICATES[name], *operands)
        if name in ("tc.sign", "tc.square", "tc.floor", "tc.ceil", "tc.abs", "tc.relu"):
            return operands[0]
        raise UnsupportedError(f"{name} on bool is not lowered by the CPU backend")

    # ----- integers -------------------------------------------------------------------------
    def _integer(self, name: str, operands: Sequence[ir.Value], dtype: DType) -> ir.Value:
        b = self.builder
        value_type = operands[0].type
        zero = ir.Constant(value_type, 0)
        simple = {"tc.add": b.add, "tc.sub": b.sub, "tc.mul": b.mul}
        if name in simple:
            return simple[name](*operands)
        if name in _INT_PREDICATES:
            return b.icmp_signed(_INT_PREDICATES[name], *operands)
        if name in ("tc.maximum", "tc.minimum"):
            kind = "smax" if name == "tc.maximum" else "smin"
            return b.call(intrinsic(b.module, f"llvm.{kind}", value_type, 2), list(operands))
        if name in ("tc.floordiv", "tc.mod"):
            return self._integer_divmod(name, *operands)
        if name == "tc.pow":
            return self._integer_pow(*operands, dtype)
        (x,) = operands
        if name == "tc.neg":
            return b.sub(zero, x)
        if name == "tc.abs":
            name = f"llvm.abs.i{value_type.width}"
            function = declare(b.module, name, value_type, [value_type, I1])
            return b.call(function, [x, I1(0)])
        if name == "tc.sign":
            positive = b.zext(b.icmp_signed(">", x, zero), value_type)
            negative = b.zext(b.icmp_signed("<", x, zero), value_type)
            return b.sub(positive, negative)
        if name == "tc.square":
            return b.mul(x, x)
        if name == "tc.relu":
            return b.call(intrinsic(b.module, "llvm.smax", value_type, 2), [x, zero])
        if name in ("tc.floor", "tc.ceil"):
            return x
        raise UnsupportedError(f"{name} on {dtype} is not lowered by the CPU backend")

    def _integer_divmod(self, name: str, lhs: ir.Value, rhs: ir.Value) -> ir.Value:
        b = self.builder
        value_type = lhs.type
        zero, one, minus_one = (ir.Constant(value_type, v) for v in (0, 1, -1))
        divisor_zero = b.icmp_signed("==", rhs, zero)
        divisor_minus_one = b.icmp_signed("==", rhs, minus_one)
        safe = b.select(b.or_(divisor_zero, divisor_minus_one), one, rhs)
        quotient = b.sdiv(lhs, safe)
        remainder = b.srem(lhs, safe)
        adjust = b.and_(
            b.icmp_signed("!=", remainder, zero),
            b.icmp_signed("<", b.xor(remainder, rhs), zero),
        )
        if name == "tc.mod":
            result = b.select(adjust, b.add(remainder, rhs), remainder)
            return b.select(divisor_zero, zero, result)
        floored = b.sub(quotient, b.zext(adjust, value_type))
        floored = b.select(divisor_minus_one, b.sub(zero, lhs), floored)
        return b.select(divisor_zero, zero, floored)

    def _integer_pow(self, base: ir.Value, exponent: ir.Value, dtype: DType) -> ir.Value:
        """Exponentiation by squaring over every exponent bit (branch-free, wrapping)."""
        b = self.builder
        value_type = base.type
        zero, one = ir.Constant(value_type, 0), ir.Constant(value_type, 1)
        result, square = one, base
        bits = value_type.width - 1
        for bit in range(bits):
            set_bit = b.trunc(b.lshr(exponent, ir.Constant(value_type, bit)), I1)
            result = b.select(set_bit, b.mul(result, square), result)
            if bit + 1 < bits:
                square = b.mul(square, square)
        negative = b.icmp_signed("<", exponent, zero)
        odd = b.trunc(exponent, I1)
        minus_one_powered = b.select(odd, ir.Constant(value_type, -1), one)
        base_minus_one = b.icmp_signed("==", base, ir.Constant(value_type, -1))
        reciprocal = b.select(
            b.icmp_signed("==", base, one),
            one,
            b.select(base_minus_one, minus_one_powered, zero),
        )
        return b.select(negative, reciprocal, result)

    # ----- floats ---------------------------------------------------------------------------
    def _float(self, op: Operation, operands: Sequence[ir.Value]) -> ir.Value:
        b = self.builder
        name = op.name
        value_type = operands[0].type
        simple = {"tc.add": b.fadd, "tc.sub": b.fsub, "tc.mul": b.fmul, "tc.div": b.fdiv}
        if name in simple:
            return simple[name](*operands)
        if name in _FLOAT_PREDICATES:
            return b.fcmp_ordered(_FLOAT_PREDICATES[name], *operands)
        if name == "tc.ne":
            return b.fcmp_unordered("!=", *operands)
        if name in ("tc.maximum", "tc.minimum"):
            kind = "maximum" if name == "tc.maximum" else "minimum"
            return b.call(intrinsic(b.module, f"llvm.{kind}", value_type, 2), list(operands))
        if name in ("tc.floordiv", "tc.mod"):
            return self._float_divmod(name, *operands)
        if name == "tc.pow":
            return emit_math(b, "pow", *operands)
        (x,) = operands
        if name in _MATH_UNARY:
            return emit_math(b, _MATH_UNARY[name], x)
        return self._float_unary(op, x)

    def _float_unary(self, op: Operation, x: ir.Value) -> ir.Value:
        b = self.builder
        name = op.name
        value_type = x.type
        zero, one = ir.Constant(value_type, 0.0), ir.Constant(value_type, 1.0)
        if name == "tc.neg":
            return b.fneg(x)
        if name == "tc.abs":
            return b.call(intrinsic(b.module, "llvm.fabs", value_type), [x])
        if name in ("tc.floor", "tc.ceil"):
            return b.call(intrinsic(b.module, f"llvm.{name[3:]}", value_type), [x])
        if name == "tc.square":
            return b.fmul(x, x)
        if name == "tc.relu":
            return b.select(b.fcmp_ordered("<", x, zero), zero, x)
        if name == "tc.sign":
            sign = b.select(b.fcmp_ordered("<", x, zero), ir.Constant(value_type, -1.0), x)
            sign = b.select(b.fcmp_ordered("==", x, zero), zero, sign)
            return b.select(b.fcmp_ordered(">", x, zero), one, sign)
        if name == "tc.rsqrt":
            return emit_math(b, "rsqrt", x)
        if name == "tc.softplus":
            return emit_math(b, "softplus", x)
        if name == "tc.gelu":
            return emit_math(b, "gelu_tanh" if op.attr("approximate", False) else "gelu", x)
        raise UnsupportedError(f"{name} on floats is not lowered by the CPU backend")

    def _float_divmod(self, name: str, a: ir.Value, b_: ir.Value) -> ir.Value:
        """NumPy's `npy_divmod` / `npy_floor_divide` / `npy_remainder`."""
        b = self.builder
        value_type = a.type
        zero, one = ir.Constant(value_type, 0.0), ir.Constant(value_type, 1.0)
        copysign = intrinsic(b.module, "llvm.copysign", value_type, 2)
        mod = b.frem(a, b_)
        divisor_zero = b.fcmp_ordered("==", b_, zero)
        div = b.fdiv(b.fsub(a, mod), b_)
        signs_differ = b.xor(b.fcmp_ordered("<", b_, zero), b.fcmp_ordered("<", mod, zero))
        adjust = b.and_(b.fcmp_unordered("!=", mod, zero), signs_differ)
        mod_fixed = b.select(adjust, b.fadd(mod, b_), mod)
        div = b.select(adjust, b.fsub(div, one), div)
        mod_fixed = b.select(
            b.fcmp_unordered("!=", mod, zero), mod_fixed, b.call(copysign, [zero, b_])
        )
        if name == "tc.mod":
            return b.select(divisor_zero, mod, mod_fixed)
        floor = intrinsic(b.module, "llvm.floor", value_type)
        floored = b.call(floor, [div])
        floored = b.select(
            b.fcmp_ordered(">", b.fsub(div, floored), ir.Constant(value_type, 0.5)),
            b.fadd(floored, one),
            floored,
        )
        quotient = b.fdiv(a, b_)
        floored = b.select(
            b.fcmp_unordered("!=", div, zero), floored, b.call(copysign, [zero, quotient])
        )
        return b.select(divisor_zero, quotient, floored)


def constant(dtype: DType, value: bool | int | float) -> ir.Constant:
    """A scalar constant of `dtype` in register form."""
    value_type = register_type(dtype)
    if dtype.is_bool:
        return ir.Constant(value_type, int(bool(value)))
    if dtype.is_float:
        return ir.Constant(value_type, float(value))
    return ir.Constant(value_type, int(value))


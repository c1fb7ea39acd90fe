"""`canonicalize`: local simplifications applied to a fixed point by `apply_patterns`, which
also runs the ops' own `fold` hooks and erases pure ops left without uses.

Floating-point safety: a rewrite is applied to floats only when it gives the same result for
every input, NaN and infinities included ("exact"), or when it is exact in real arithmetic and
the original could only lose accuracy ("more accurate"). The one relaxation is the sign of a
zero result: `x + 0.0 -> x` keeps `-0.0` where the original gives `+0.0` (as XLA and Theano
do); `canonicalize{strict-fp=true}` turns that off.

| pattern                    | rewrite                                                 | floats        |
|----------------------------|---------------------------------------------------------|---------------|
| ConstantToRhs              | `c op x -> x op c` (add mul maximum minimum eq ne and or) | exact       |
| AddZero                    | `x + 0 -> x`, `0 + x -> x`                              | -0.0 exact; +0.0 sign of zero |
| SubZero                    | `x - 0 -> x`                                            | +0.0 exact; -0.0 sign of zero |
| SubFromZero                | `0 - x -> -x`                                           | -0.0 exact; +0.0 sign of zero |
| MulOne                     | `x * 1 -> x`, `1 * x -> x`                              | exact         |
| MulMinusOne                | `x * -1 -> -x`                                          | exact         |
| DivOne                     | `x / 1 -> x`                                            | exact         |
| PowSmallInteger            | `x**1 -> x`, `x**2 -> square(x)`, `x**0 -> 1`           | exact         |
| IntegerMulZero             | `x * 0 -> 0`                                            | never (NaN, inf, -0.0) |
| IntegerSubSelf             | `x - x -> 0`                                            | never (NaN, inf) |
| IntegerCompareSelf         | `x == x`, `<=`, `>=` -> true; `!=`, `<`, `>` -> false   | never (NaN)   |
| Idempotent                 | `max(x, x)`, `min(x, x)`, `x and x`, `x or x` -> x      | exact         |
| BooleanIdentity            | `b and true -> b`, `b and false -> false`, `or` dually  | (bool)        |
| Involution                 | `-(-x) -> x`, `not not b -> b`                          | exact         |
| AddNegation                | `-a + b -> b - a`, `a + -b -> a - b`                    | exact         |
| SubNegation                | `a - -b -> a + b`                                       | exact         |
| AbsorbNegation             | `abs(-x) -> abs(x)`, `square(-x) -> square(x)`          | exact         |
| IdempotentUnary            | `abs(abs x)`, `relu(relu x)`, `sign(sign x)`; floor/ceil of ints -> x | exact |
| LogOfExp                   | `log(exp(x)) -> x` (`exp(log(x))` is NOT x: log(-1) is NaN) | more accurate |
| SqrtOfSquare               | `sqrt(square(x)) -> abs(x)`                             | more accurate |
| CastNoop                   | `cast(x)` to its own type -> x                          | exact         |
| CastOfWideningCast         | `cast(cast(x: A): B): C -> cast(x): C` when A -> B is exact | exact     |
| SelectConstantCondition    | `where(true, a, b) -> a`, `where(false, a, b) -> b`     | exact         |
| SelectSameBranches         | `where(c, x, x) -> x`                                   | exact         |
| SelectOfNot                | `where(not c, a, b) -> where(c, b, a)`                  | exact         |
| TransposeComposition       | `transpose(transpose(x, p), q) -> transpose(x, p∘q)`; identity -> x | exact |
| ReshapeComposition         | `reshape(reshape(x)) -> reshape(x)`; to x's type -> x   | exact         |
| BroadcastComposition       | `broadcast(broadcast(x)) -> broadcast(x)`; to x's type -> x | exact     |
| ShapeOpOfScalarBroadcast   | reshape/transpose/slice/broadcast of `broadcast(s: scalar)` -> `broadcast(s)` | exact |
| SmallSplatConstant         | broadcast/reshape of a splat constant, <= 16 elements -> splat constant | exact |
| SliceWholeTensor           | `x[0:n:1, ...]` of the whole tensor -> x                | exact         |
| ReduceNoAxes               | a reduction over no axes -> x (or a cast)               | exact         |
| ReduceUnitAxes             | sum/prod/max/min/mean over size-1 axes -> reshape (cast) | exact        |
| ArgReduceUnitAxis          | argmax/argmin along a size-1 axis -> 0                  | exact         |
| SinkBroadcast              | `f(broadcast(a), broadcast(b)) -> broadcast(f(a, b))`, a and b of one shape; splat operands rebuilt small | exact |

Not here on purpose: `x * 0 -> 0` and `x - x -> 0` for floats (NaN, inf), `exp(log(x)) -> x`
(domain), and `stop_gradient(x) -> x` (the autodiff pass removes it once gradients are built).
Constant folding of whole ops is the `fold` pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from tensorc.ir.dialects.func import Module
from tensorc.passes.canonical_patterns import arithmetic_patterns
from tensorc.passes.canonical_shape import shape_patterns
from tensorc.passes.pass_manager import ModulePass, register_pass
from tensorc.passes.rewrite import RewritePattern, apply_patterns


def canonical_patterns(strict_fp: bool = False) -> list[RewritePattern]:
    """Every canonicalization pattern, for passes that want to canonicalize as they go."""
    return arithmetic_patterns(strict_fp) + shape_patterns()


@register_pass
@dataclass(frozen=True)
class Canonicalize(ModulePass):
    """Simplify to a fixed point. `strict-fp` keeps the sign of zero results exact."""

    name = "canonicalize"
    strict_fp: bool = False

    def run(self, module: Module) -> None:
        apply_patterns(module, canonical_patterns(self.strict_fp))

"""`canonicalize`: local simplifications applied to a fixed point by `apply_patterns`, which
also runs the ops' own `fold` hooks and erases pure ops left without uses.

Floating-point safety, the last column of the table:
- exact: the same result for every input, NaN, infinities and signed zeros included;
- zero-sign: exact except that a zero result may have the other sign (`-0.0 + 0.0` is `+0.0`,
  so `x + 0.0 -> x` turns that `+0.0` into `-0.0`), as XLA and Theano accept;
  `canonicalize{strict-fp=true}` applies these only with the exact zero (`x + -0.0`, `x - 0.0`);
- accurate: exact in real arithmetic, and where the float results differ the original was the
  one that lost accuracy (`exp` overflowing, `x*x` underflowing, a 1-ulp `pow`);
- ints: applied to integers and bools only (NaN and infinities break it for floats).

| pattern                  | rewrite                                                | floats    |
|--------------------------|--------------------------------------------------------|-----------|
| ConstantToRhs            | `c op x -> x op c` (add mul max min eq ne and or)      | exact     |
| AddZero                  | `x + 0 -> x`, `0 + x -> x`                             | zero-sign |
| SubZero                  | `x - 0 -> x`                                           | zero-sign |
| SubFromZero              | `0 - x -> -x`                                          | zero-sign |
| MulOne                   | `x * 1 -> x`, `1 * x -> x`                             | exact     |
| MulMinusOne              | `x * -1 -> -x`                                         | exact     |
| DivOne                   | `x / 1 -> x`                                           | exact     |
| PowSmallInteger          | `x**1 -> x`, `x**0 -> 1`                               | exact     |
|                          | `x**2 -> square(x)`                                    | accurate  |
| IntegerMulZero           | `x * 0 -> 0`, `0 * x -> 0`                             | ints      |
| IntegerSubSelf           | `x - x -> 0`                                           | ints      |
| IntegerCompareSelf       | `x == x`, `<=`, `>=` -> true; `!=`, `<`, `>` -> false  | ints      |
| Idempotent               | `max(x, x)`, `min(x, x)`, `b and b`, `b or b` -> x     | exact     |
| BooleanIdentity          | `b and true -> b`, `b and false -> false`, `or` dually | (bool)    |
| Involution               | `-(-x) -> x`, `not not b -> b`                         | exact     |
| AddNegation              | `-a + b -> b - a`, `a + -b -> a - b`                   | exact     |
| SubNegation              | `a - -b -> a + b`                                      | exact     |
| AbsorbNegation           | `abs(-x) -> abs(x)`, `square(-x) -> square(x)`         | exact     |
| IdempotentUnary          | `abs(abs(x))`, `relu(relu(x))`, `sign(sign(x))`       | exact     |
|                          | `floor(i)`, `ceil(i)` of integers -> i                 | (ints)    |
| LogOfExp                 | `log(exp(x)) -> x`                                     | accurate  |
| SqrtOfSquare             | `sqrt(square(x)) -> abs(x)`                            | accurate  |
| CastNoop                 | `cast(x)` to x's own type -> x                         | exact     |
| CastOfWideningCast       | `cast(cast(x: A): B): C -> cast(x): C`, A -> B exact   | exact     |
| SelectConstantCondition  | `where(true, a, b) -> a`, `where(false, a, b) -> b`    | exact     |
| SelectSameBranches       | `where(c, x, x) -> x`                                  | exact     |
| SelectOfNot              | `where(not c, a, b) -> where(c, b, a)`                 | exact     |
| TransposeComposition     | `transpose(transpose(x, p), q) -> transpose(x, p∘q)`  | exact     |
|                          | an identity permutation -> x                           | exact     |
| ReshapeComposition       | `reshape(reshape(x)) -> reshape(x)`; to x's type -> x  | exact     |
| BroadcastComposition     | `broadcast(broadcast(x)) -> broadcast(x)`; same -> x   | exact     |
| ShapeOpOfScalarBroadcast | reshape/transpose/slice/broadcast of a broadcast       | exact     |
|                          | scalar s -> `broadcast(s)` to the result type          |           |
| SmallSplatConstant       | broadcast/reshape of a splat constant to <= 16         | exact     |
|                          | static elements -> a splat constant                    |           |
| SliceWholeTensor         | a slice of every element (start 0, step 1) -> x        | exact     |
| ReduceNoAxes             | a reduction over no axes -> x (or a cast)              | exact     |
| ReduceUnitAxes           | sum/prod/max/min/mean over size-1 axes -> reshape      | exact     |
| ArgReduceUnitAxis        | argmax/argmin along a size-1 axis -> 0                 | exact     |
| SinkBroadcast            | `f(broadcast(a), broadcast(b)) -> broadcast(f(a, b))`  | exact     |
|                          | for elementwise f, a and b of one shape (splat         |           |
|                          | constant operands are rebuilt at the small shape)      |           |

Not here on purpose: `x * 0 -> 0` and `x - x -> 0` for floats (NaN, inf), `exp(log(x)) -> x`
(log of a negative number is NaN), and `stop_gradient(x) -> x` (the autodiff pass removes it
once gradients are built). Constant folding of whole ops is the `fold` pass. LogOfExp and
SqrtOfSquare are also in `stabilize`; they are here too so that -O1 has them.
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

    def run(self, module: Module) -> bool:
        return apply_patterns(module, canonical_patterns(self.strict_fp))

"""dtype promotion with weak literals (SPEC §1.4), as in JAX.

Tensors promote along `bool < i32 < i64 < f16 < bf16 < f32 < f64`. A literal is weak: it takes
the dtype of the tensor it meets, except that a float literal with an integer or bool tensor
gives `f32`, and an integer literal with a bool tensor gives `i32`. Alone, an integer literal
is `i32`, a float one `f32`, `true`/`false` `bool`.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import reduce

from tensorc.frontend.values import BoolConst, FloatConst, IntConst, Tensor, Term
from tensorc.ir.dtypes import DType, promote

_WEAK_KIND_ORDER = {BoolConst: 0, IntConst: 1, FloatConst: 2}
_WEAK_DEFAULT = {BoolConst: DType.BOOL, IntConst: DType.I32, FloatConst: DType.F32}


def default_dtype(term: IntConst | FloatConst | BoolConst) -> DType:
    """The dtype a lone literal gets."""
    return _WEAK_DEFAULT[type(term)]


def result_dtype(terms: Iterable[Term]) -> DType:
    """The common dtype of tensors and weak scalars (other terms are ignored)."""
    strong: list[DType] = []
    weakest_kind: type | None = None
    for term in terms:
        if isinstance(term, Tensor):
            strong.append(term.type.dtype)
        elif type(term) in _WEAK_KIND_ORDER:
            kind = type(term)
            if weakest_kind is None or _WEAK_KIND_ORDER[kind] > _WEAK_KIND_ORDER[weakest_kind]:
                weakest_kind = kind
    if not strong:
        return _WEAK_DEFAULT[weakest_kind] if weakest_kind is not None else DType.F32
    dtype = reduce(promote, strong)
    if weakest_kind is FloatConst and not dtype.is_float:
        return DType.F32
    if weakest_kind is IntConst and dtype.is_bool:
        return DType.I32
    return dtype


def float_dtype(dtype: DType) -> DType:
    """The dtype in which float-only functions compute: integers and bools become f32."""
    return dtype if dtype.is_float else DType.F32


def dtype_kind(dtype: DType) -> str:
    return "float" if dtype.is_float else "integer" if dtype.is_int else "bool"

"""The ``__call__`` generated for each CPU function (native.py's module doc, "The call path").

:func:`fast_call` writes straight-line Python for one signature, like ``dataclasses`` does:
it takes the common call -- NumPy arrays of exactly the parameter dtypes, C-contiguous and
aligned -- checks them as :meth:`Signature.bind` would, allocates the results and makes one
foreign call. Anything else goes to the function's general path, which gives the same results
and the documented errors.

Where the parameter names allow it (Python identifiers that clash with nothing in the
generated code) the parameters *are* the tensorc names, ``def mlp(_self, x=MISSING, w=MISSING,
*_extra)``, so Python binds positional and keyword arguments itself; a call that leaves one
out, or gives too many, goes to the general path for its message. Python's own messages for
an unknown or repeated keyword are the ones the general path gives (the code object carries
the tensorc function's name). Otherwise the call unpacks ``*args, **kwargs`` by hand.

The foreign call, most direct first (:data:`CHECKED`, :data:`INVOKE`, :data:`PLAIN`):
``__tensorc_invoke_checked`` gets one packet with the addresses of the arrays' ``data`` members
and checks their ``flags`` members natively (layout.py), declining with
:data:`INVOKE_DECLINED` when an argument is not C-contiguous and aligned; ``__tensorc_invoke``
takes the same packet without that check, which the Python code then makes; artifacts without
either get packed data addresses. Declining costs nothing: results are only allocated, and
nothing has run.
"""

from __future__ import annotations

import ast
import ctypes
import keyword
import operator
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .dims import compile_dim
from .dtypes import to_numpy_dtype
from .errors import ArtifactError
from .layout import DATA_OFFSET, FLAGS_OFFSET, FLAGS_REQUIRED, data_address
from .pool import MIN_POOLED_BYTES, default_pool
from .signature import Signature

__all__ = [
    "ALIGN_RESULTS_FROM_BYTES",
    "CHECKED",
    "INVOKE",
    "INVOKE_DECLINED",
    "INVOKE_MAX_ARRAYS",
    "MISSING",
    "PLAIN",
    "POINTER_CODE",
    "RESULT_ALIGNMENT",
    "FastCall",
    "aligned_empty",
    "fast_call",
]

RESULT_ALIGNMENT = 64
ALIGN_RESULTS_FROM_BYTES = 4096
POINTER_CODE = {8: "Q", 4: "I"}[ctypes.sizeof(ctypes.c_void_p)]

PLAIN = "plain"  # entry(args, results, dims, NULL) with packed data addresses
INVOKE = "invoke"  # __tensorc_invoke(packet of data-member addresses)
CHECKED = "checked"  # __tensorc_invoke_checked(packet): also checks the arguments' flags
INVOKE_DECLINED = -2  # __tensorc_invoke_checked: an argument is not C-contiguous and aligned
INVOKE_MAX_ARRAYS = 64  # TC_INVOKE_MAX in support/threadpool.c


class _Missing:
    """The default of a named fast call's parameters: the argument was not given."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING = _Missing()


@dataclass(frozen=True)
class FastCall:
    """Generated ``__call__`` source, the globals it needs but the native handles, and
    whether its parameters carry the tensorc names."""

    source: str
    namespace: dict[str, Any]
    named: bool


def fast_call(signature: Signature, dims_order: Sequence[str], native: str) -> FastCall:
    """The fast ``__call__`` of `signature` calling native code the `native` way: generated
    with placeholder parameter names first, and again with the tensorc names when those are
    free in it (`_names_are_free`). Generated again, not renamed in the text: the text also
    holds dimension names as strings, which may be spelled like a placeholder."""
    names = [param.name for param in signature.params]
    placeholders = [f"__tc_param{index}" for index in range(len(names))]
    source, namespace = _source(signature, dims_order, native, placeholders)
    if _names_are_free(source, names):
        source, namespace = _source(signature, dims_order, native, names)
        return FastCall(source, namespace, named=True)
    source, namespace = _source(signature, dims_order, native, None)
    return FastCall(source, namespace, named=False)


def aligned_empty(shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, int]:
    """An uninitialised C-order array whose data is RESULT_ALIGNMENT-aligned, and its address."""
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + RESULT_ALIGNMENT, np.uint8)
    offset = -data_address(raw) % RESULT_ALIGNMENT
    array = np.ndarray(shape, dtype, raw, offset)
    return array, data_address(array)


def _names_are_free(source: str, names: Sequence[str]) -> bool:
    """The parameters of `source` (generated with placeholder names) can take `names` when
    each is a Python identifier that names nothing else in it."""
    if any(not name.isidentifier() or keyword.iskeyword(name) for name in names):
        return False
    used = {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}
    used |= {"_self", "_extra"}
    return not used.intersection(names)


def _source(
    signature: Signature,
    dims_order: Sequence[str],
    native: str,
    variables: Sequence[str] | None,
) -> tuple[str, dict[str, Any]]:
    """Python source of ``__call__`` and the names it uses; parameters named `variables`, or
    ``*args, **kwargs`` unpacked into ``a0, a1, ...`` when `variables` is None."""
    namespace: dict[str, Any] = {
        "ndarray": np.ndarray,
        "empty": np.empty,
        "aligned_empty": aligned_empty,
        "pooled": default_pool.take,
        "MISSING": MISSING,
    }
    if DATA_OFFSET is not None:
        namespace["from_address"] = ctypes.c_void_p.from_address

    def address_of(variable: str) -> str:
        if DATA_OFFSET is None:
            return f"{variable}.ctypes.data"
        return f"from_address(id({variable}) + {DATA_OFFSET}).value"

    params = signature.params
    if variables is None:
        header = "def __call__(self, /, *args, **kwargs):"  # a parameter may be `self`
        general = "return self._call_general(args, kwargs)"
        arrays = [f"a{index}" for index in range(len(params))]
        lines = _unpack_arguments(signature, general)
        self_name = "self"
    else:
        defaults = "".join(f"{variable}=MISSING, " for variable in variables)
        header = f"def __call__(_self, {defaults}*_extra):"
        values = f"({''.join(f'{variable}, ' for variable in variables)})"
        general = f"return _self._call_general({values}, None)"
        arrays = list(variables)
        missing = [f"{variable} is MISSING" for variable in variables]
        lines = _guard(["_extra", *missing], f"return _self._call_named(_extra, {values})")
        self_name = "_self"

    type_checks = []
    for index, (param, array) in enumerate(zip(params, arrays)):
        namespace[f"dt{index}"] = to_numpy_dtype(param.dtype)
        check = f"type({array}) is not ndarray or {array}.dtype is not dt{index}"
        if native == INVOKE:
            check += f" or not (fl{index} := {array}.flags).c_contiguous or not fl{index}.aligned"
        elif native == PLAIN:
            check += f" or not {array}.flags.c_contiguous"
        type_checks.append(check)
    lines += _guard(type_checks, general)

    symbol_vars: dict[str, str] = {}
    for index, (param, array) in enumerate(zip(params, arrays)):
        shape_checks = [f"len(s{index}) != {param.rank}"]
        lines.append(f"s{index} = {array}.shape")
        bindings = []
        bound_here: dict[str, int] = {}  # a dim this parameter binds -> its first axis
        for axis, dim in enumerate(param.shape):
            if dim.isdigit():
                shape_checks.append(f"s{index}[{axis}] != {int(dim)}")
            elif dim in bound_here:  # f32[N, N]: the binding comes after the checks
                shape_checks.append(f"s{index}[{axis}] != s{index}[{bound_here[dim]}]")
            elif dim in symbol_vars:
                shape_checks.append(f"s{index}[{axis}] != {symbol_vars[dim]}")
            else:
                bound_here[dim] = axis
                symbol_vars[dim] = f"d{len(symbol_vars)}"
                bindings.append(f"{symbol_vars[dim]} = s{index}[{axis}]")
        lines += _guard(shape_checks, general)
        lines += bindings

    if native == PLAIN:  # other ways read the addresses natively
        alignment_checks = []
        for index, (param, array) in enumerate(zip(params, arrays)):
            lines.append(f"p{index} = {address_of(array)}")
            itemsize = to_numpy_dtype(param.dtype).itemsize
            if itemsize > 1:
                alignment_checks.append(f"p{index} % {itemsize}")
        lines += _guard(alignment_checks, general)

    uses_env = bool(signature.constraints) or any(
        not (dim.isdigit() or dim in symbol_vars)
        for result in signature.results
        for dim in result.shape
    )
    if uses_env:
        env_items = ", ".join(f"{name!r}: {var}" for name, var in symbol_vars.items())
        lines.append(f"env = {{{env_items}}}")
    constraint_checks = []
    for index, constraint in enumerate(signature.constraints):
        compare = {"eq": operator.eq, "lt": operator.lt, "le": operator.le}[constraint.kind]
        namespace[f"compare{index}"] = compare
        namespace[f"lhs{index}"] = compile_dim(constraint.lhs).evaluate
        namespace[f"rhs{index}"] = compile_dim(constraint.rhs).evaluate
        constraint_checks.append(f"not compare{index}(lhs{index}(env), rhs{index}(env))")
    lines += _guard(constraint_checks, general)

    extents = 0  # dimension expressions evaluated through env
    for index, result in enumerate(signature.results):
        namespace[f"rt{index}"] = dtype = to_numpy_dtype(result.dtype)
        axes = []
        for dim in result.shape:
            compiled = compile_dim(dim)
            if compiled.constant is not None:
                axes.append(str(max(0, compiled.constant)))
            elif dim in symbol_vars:
                axes.append(symbol_vars[dim])
            else:
                namespace[f"extent{extents}"] = compiled.evaluate
                axes.append(f"max(0, extent{extents}(env))")
                extents += 1
        shape = f"({', '.join(axes)},)" if axes else "()"
        lines.append(f"shape{index} = {shape}")
        lines += _result_allocation(index, axes, dtype, address_of, native == PLAIN)

    missing_dims = [name for name in dims_order if name not in symbol_vars]
    if missing_dims:
        raise ArtifactError(f"{signature.name}: dims {missing_dims} are not parameter sizes")
    dims_items = ", ".join(symbol_vars[name] for name in dims_order)
    if native == PLAIN:
        arg_items = ", ".join(f"p{index}" for index in range(len(params)))
        result_items = ", ".join(f"q{index}" for index in range(len(signature.results)))
        lines += [
            f"args_data = pack_args({arg_items})",
            f"results_data = pack_results({result_items})",
            f"dims_data = pack_dims({dims_items})",
            "if entry(args_data, results_data, dims_data, None):",
            f"    {self_name}._raise_native_error(args_data, results_data, dims_data)",
        ]
    else:
        lines += _invoke_lines(
            signature, arrays, dims_order, dims_items, address_of, namespace, native, general,
            self_name,
        )
    results = [f"r{index}" for index in range(len(signature.results))]
    if len(results) == 1:
        lines.append(f"return {results[0]}")
    else:
        lines.append(f"return ({''.join(f'{r}, ' for r in results)})")
    body = "\n".join(f"    {line}" for line in lines)
    return f"{header}\n{body}\n", namespace


def _result_allocation(
    index: int,
    axes: Sequence[str],
    dtype: np.dtype,
    address_of: Callable[[str], str],
    need_address: bool,
) -> list[str]:
    """Code binding result ``r{index}`` (of shape ``shape{index}``), and its address
    ``q{index}`` when `need_address`: np.empty when small, 64-byte aligned when at least
    ALIGN_RESULTS_FROM_BYTES, from the result pool when at least MIN_POOLED_BYTES (decided
    at generation time for static shapes)."""
    static = all(axis.isdigit() for axis in axes)
    nbytes = " * ".join([*axes, str(dtype.itemsize)])
    bind_address = f"q{index} = {address_of(f'r{index}')}"
    address = [bind_address] if need_address else []
    plain = [f"r{index} = empty(shape{index}, rt{index})"]
    aligned = [
        *plain,
        bind_address,
        f"if q{index} & {RESULT_ALIGNMENT - 1}:",
        f"    r{index}, q{index} = aligned_empty(shape{index}, rt{index})",
    ]
    pooled = [f"r{index} = pooled(shape{index}, rt{index}, nbytes{index})", *address]
    if static:
        static_bytes = dtype.itemsize * int(np.prod([int(axis) for axis in axes]))
        if static_bytes >= MIN_POOLED_BYTES:
            return [f"nbytes{index} = {static_bytes}", *pooled]
        if static_bytes >= ALIGN_RESULTS_FROM_BYTES:
            return aligned
        return plain + address

    def indented(block: list[str]) -> list[str]:
        return ["    " + line for line in block]

    return [  # the small case first: one comparison on the path where it matters
        f"nbytes{index} = {nbytes}",
        f"if nbytes{index} < {ALIGN_RESULTS_FROM_BYTES}:",
        *indented(plain + address),
        f"elif nbytes{index} < {MIN_POOLED_BYTES}:",
        *indented(aligned),
        "else:",
        *indented(pooled),
    ]


def _invoke_lines(
    signature: Signature,
    arrays: Sequence[str],
    dims_order: Sequence[str],
    dims_items: str,
    address_of: Callable[[str], str],
    namespace: dict[str, Any],
    native: str,
    general: str,
    self_name: str,
) -> list[str]:
    """The call through the artifact's ``__tensorc_invoke`` or ``__tensorc_invoke_checked``
    (module doc): one packet with the addresses of the arrays' data members; the slow path
    reads the addresses to report an error."""
    arity, count = len(signature.params), len(signature.results)
    header = ["entry_address", str(arity), str(count), str(len(dims_order))]
    if native == CHECKED:
        header += [str(FLAGS_OFFSET), str(FLAGS_REQUIRED)]
    fields = [f"id({array}) + {DATA_OFFSET}" for array in arrays]
    fields += [f"id(r{index}) + {DATA_OFFSET}" for index in range(count)]
    items = ", ".join([*header, *fields] + ([dims_items] if dims_items else []))
    namespace["pack_packet"] = struct.Struct(
        f"={len(header) + arity + count}{POINTER_CODE}{len(dims_order)}q"
    ).pack
    arg_addresses = ", ".join(address_of(array) for array in arrays)
    result_addresses = ", ".join(address_of(f"r{index}") for index in range(count))
    report = (
        f"{self_name}._raise_native_error(pack_args({arg_addresses}), "
        f"pack_results({result_addresses}), pack_dims({dims_items}))"
    )
    if native == INVOKE:
        return [f"if invoke(pack_packet({items})):", f"    {report}"]
    return [
        f"if code := invoke(pack_packet({items})):",
        f"    if code == {INVOKE_DECLINED}:",
        f"        {general}",
        f"    {report}",
    ]


def _unpack_arguments(signature: Signature, general: str) -> list[str]:
    """Code binding ``a0, a1, ...`` from all-positional or all-keyword arguments."""
    arity = len(signature.params)
    if arity == 0:
        return ["if args or kwargs:", f"    {general}"]
    names = ", ".join(f"a{index}" for index in range(arity))
    lookups = [
        f"        a{index} = kwargs[{param.name!r}]" for index, param in enumerate(signature.params)
    ]
    return [
        "if kwargs:",
        f"    if args or len(kwargs) != {arity}:",
        f"        {general}",
        "    try:",
        *lookups,
        "    except KeyError:",
        f"        {general}",
        f"elif len(args) == {arity}:",
        f"    {names}, = args",
        "else:",
        f"    {general}",
    ]


def _guard(conditions: Sequence[str], action: str) -> list[str]:
    """``if c1 or c2 ...: action`` (nothing when there is no condition)."""
    if not conditions:
        return []
    joined = " or ".join(f"({condition})" for condition in conditions)
    return [f"if {joined}:", f"    {action}"]

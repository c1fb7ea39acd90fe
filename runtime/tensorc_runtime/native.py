"""Loading a CPU artifact and calling its entry points (docs/abi.md), with only NumPy.

    mod = load("model.so")        # ArtifactError for anything that is not a loadable artifact
    out = mod.mlp(x, w1, b1)      # checked like SPEC section 4; NumPy in, NumPy out
    mod.functions                 # names -> Signature

Loading reads and validates the manifest from the ELF section headers and checks the
architecture and CPU features *before* ``dlopen``, so a foreign, corrupted or incompatible
file never runs any code.

The call path
-------------
Each function gets a ``__call__`` generated for its signature (like ``dataclasses`` does),
which handles the common call -- positional NumPy arrays of exactly the parameter dtypes,
C-contiguous and aligned -- with straight-line code: it checks every argument exactly as
:meth:`Signature.bind` would (type, dtype, rank, static sizes, symbolic sizes, constraints),
allocates the results, and calls the entry point through ctypes, which releases the GIL. Any
argument it does not accept as is (a keyword, a Python scalar, another dtype, a strided
array, a failed check) sends the call to the general path, :meth:`Signature.bind` plus the
same call, which converts what it may and raises the documented errors. Both paths give
identical results and errors.

The entry point's ``args``, ``results`` and ``dims`` arrays are ``bytes`` objects packed
with ``struct`` (the entry point only reads them), passed with ``argtypes`` unset so that
ctypes hands over their buffers without converting anything: this halves the cost of the
foreign call compared with ctypes arrays and ``c_void_p`` arguments. ``error`` is NULL; when
the entry point fails, the call is repeated with a fresh ``tensorc_error`` to read the
message (entry points have no effect besides writing their results, docs/abi.md), so
success costs nothing for error reporting.

Artifacts that export ``tensorc_invoke`` (docs/abi.md) are called through it instead: the
generated code packs, in one ``struct`` call, the entry point's address and the addresses of
the arguments' and results' ``data`` fields (``id(array)`` plus the verified offset below),
and ``tensorc_invoke`` reads the data addresses natively. This takes about a third off the
cost of a small call (1.5 to 1.1 us for ``x + 1`` on 8 elements here).

Otherwise an array's data address is read from the ``data`` field of NumPy's array struct (its first
field after the object header, ``PyArrayObject_fields.data``; the offset is found and
verified against ``__array_interface__`` at import), which costs an eighth of
``arr.ctypes.data``; where that cannot be verified the runtime uses ``arr.ctypes.data``.
"""

from __future__ import annotations

import ctypes
import operator
import os
import struct
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .cpu import check_cpu, host_arch
from .dims import compile_dim
from .dtypes import to_numpy_dtype
from .elf import read_elf_info, read_manifest
from .errors import ArtifactError
from .pool import MIN_POOLED_BYTES, default_pool
from .signature import Signature

__all__ = [
    "ALIGN_RESULTS_FROM_BYTES",
    "ERROR_CODES",
    "RESULT_ALIGNMENT",
    "NativeFunction",
    "NativeModule",
    "TensorcError",
    "load",
]

RESULT_ALIGNMENT = 64
ALIGN_RESULTS_FROM_BYTES = 4096
CUDA_MESSAGE = "this is a CUDA artifact; loading it needs pycuda and an NVIDIA GPU"


class TensorcError(ctypes.Structure):
    """``struct tensorc_error`` of docs/abi.md."""

    _fields_ = [
        ("code", ctypes.c_int32),
        ("op", ctypes.c_int32),
        ("detail", ctypes.c_int64 * 4),
        ("message", ctypes.c_char * 256),
    ]


ERROR_CODES: Mapping[int, type[Exception]] = {1: IndexError, 2: ValueError, 3: MemoryError}
_POINTER_BYTES = ctypes.sizeof(ctypes.c_void_p)


def _packer(count: int, code: str) -> Callable[..., bytes | None]:
    """Packs ``count`` values into native bytes; with no values, gives NULL (None)."""
    if count == 0:
        return lambda: None
    return struct.Struct(f"={count}{code}").pack


_POINTER_CODE = {8: "Q", 4: "I"}[_POINTER_BYTES]


# -- array data addresses --------------------------------------------------------------------


def _find_data_offset() -> int | None:
    """Offset of ``PyArrayObject_fields.data`` from ``id(array)``, if it can be verified."""
    if sys.implementation.name != "cpython":
        return None
    probes = [np.empty(n, dtype) for n, dtype in ((3, np.float32), (17, np.int64), (0, np.bool_))]
    probes += [probes[1][5:], np.arange(12.0).reshape(3, 4)[1:, ::2], np.zeros((), np.float64)]
    header = object.__basicsize__
    for offset in (header, *range(8, 64, 8)):
        if all(_read_pointer(id(a) + offset) == _interface_address(a) for a in probes):
            return offset
    return None


def _read_pointer(address: int) -> int:
    return ctypes.c_void_p.from_address(address).value or 0


def _interface_address(array: np.ndarray) -> int:
    return int(array.__array_interface__["data"][0])


_DATA_OFFSET = _find_data_offset()


def data_address(array: np.ndarray) -> int:
    """The address of ``array``'s first element (the caller keeps ``array`` alive)."""
    if _DATA_OFFSET is None:
        return int(array.ctypes.data)
    return ctypes.c_void_p.from_address(id(array) + _DATA_OFFSET).value or 0


def _aligned_empty(shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, int]:
    """An uninitialised C-order array whose data is RESULT_ALIGNMENT-aligned, and its address."""
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + RESULT_ALIGNMENT, np.uint8)
    offset = -data_address(raw) % RESULT_ALIGNMENT
    array = np.ndarray(shape, dtype, raw, offset)
    return array, data_address(array)


def _allocate(shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, int]:
    """A result buffer (64-byte aligned when it is at least ALIGN_RESULTS_FROM_BYTES; from
    the result pool, pool.py, when it is at least MIN_POOLED_BYTES)."""
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes >= MIN_POOLED_BYTES:
        array = default_pool.take(shape, dtype, nbytes)
        return array, data_address(array)
    array = np.empty(shape, dtype)
    address = data_address(array)
    if address % RESULT_ALIGNMENT and array.nbytes >= ALIGN_RESULTS_FROM_BYTES:
        return _aligned_empty(shape, dtype)
    return array, address


# -- functions -------------------------------------------------------------------------------


class NativeFunction:
    """One entry point of a loaded artifact; call it like the tensorc function."""

    def __init__(
        self,
        signature: Signature,
        entry: Callable[..., int],
        symbol: str,
        dims_order: Sequence[str],
        library: ctypes.CDLL,
    ) -> None:
        self.signature = signature
        self.symbol = symbol
        self.dims_order = tuple(dims_order)
        self.__name__ = signature.name
        self._entry = entry
        self._library = library  # keeps the shared object loaded
        self._arity = len(signature.params)
        self._result_count = len(signature.results)
        self._pack_args = _packer(self._arity, _POINTER_CODE)
        self._pack_results = _packer(self._result_count, _POINTER_CODE)
        self._pack_dims = _packer(len(self.dims_order), "q")

    @property
    def name(self) -> str:
        return self.signature.name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call_general(args, kwargs)

    def _call_general(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        """Bind (check and convert) with the Signature, then call."""
        bound = self.signature.bind(args, kwargs)
        results = []
        result_addresses = []
        for shape, dtype in zip(bound.result_shapes, bound.result_dtypes):
            array, address = _allocate(shape, dtype)
            results.append(array)
            result_addresses.append(address)
        args_data = self._pack_args(*map(data_address, bound.arrays))
        results_data = self._pack_results(*result_addresses)
        dims_data = self._pack_dims(*map(bound.dims.__getitem__, self.dims_order))
        code = self._entry(args_data, results_data, dims_data, None)
        if code:
            self._raise_native_error(args_data, results_data, dims_data)
        return results[0] if len(results) == 1 else tuple(results)

    def _raise_native_error(
        self, args_data: bytes | None, results_data: bytes | None, dims_data: bytes | None
    ) -> None:
        """The call failed with ``error`` NULL: repeat it with a struct to read the message and
        raise the exception for its code (returns if the repeated call succeeds)."""
        error = TensorcError()
        code = self._entry(args_data, results_data, dims_data, ctypes.byref(error))
        if code == 0:
            return
        message = error.message.decode("utf-8", "replace").strip()
        exception = ERROR_CODES.get(code)
        if exception is None:
            raise RuntimeError(
                f"{self.name}(): the artifact returned unknown error code {code}"
                + (f": {message}" if message else "")
            )
        raise exception(message or f"{self.name}(): failed with error code {code}")

    def __repr__(self) -> str:
        return f"<tensorc function {self.signature} ({self.symbol})>"


def _specialized_function(
    signature: Signature,
    entry: Callable[..., int],
    symbol: str,
    dims_order: Sequence[str],
    library: ctypes.CDLL,
) -> NativeFunction:
    """A NativeFunction whose class has a ``__call__`` generated for this signature."""
    if not _numpy_has_dtypes(signature):  # bf16: every call takes the general path (TypeError)
        return NativeFunction(signature, entry, symbol, dims_order, library)
    invoke = _invoke_function(library)
    source, namespace = _fast_call_source(signature, dims_order, invoke is not None)
    namespace.update(
        entry=entry,
        invoke=invoke,
        entry_address=ctypes.cast(entry, ctypes.c_void_p).value,
        pack_args=_packer(len(signature.params), _POINTER_CODE),
        pack_results=_packer(len(signature.results), _POINTER_CODE),
        pack_dims=_packer(len(dims_order), "q"),
    )
    exec(compile(source, f"<tensorc_runtime: {signature.name}.__call__>", "exec"), namespace)
    call = namespace["__call__"]
    call.__doc__ = f"Call {signature} ({symbol})."
    specialized = type(
        "NativeFunction",
        (NativeFunction,),
        {"__call__": call, "__module__": __name__, "_source": source},
    )
    return specialized(signature, entry, symbol, dims_order, library)


def _invoke_function(library: ctypes.CDLL) -> Callable[[bytes], int] | None:
    """The artifact's `tensorc_invoke` (module doc), when it has one and the data field's
    offset is verified; None otherwise (older artifacts, other Pythons)."""
    if _DATA_OFFSET is None:
        return None
    try:
        invoke = library["tensorc_invoke"]
    except AttributeError:
        return None
    invoke.argtypes = None
    invoke.restype = ctypes.c_int32
    return invoke


def _numpy_has_dtypes(signature: Signature) -> bool:
    try:
        for spec in (*signature.params, *signature.results):
            to_numpy_dtype(spec.dtype)
    except TypeError:
        return False
    return True


def _fast_call_source(
    signature: Signature, dims_order: Sequence[str], invoke: bool = False
) -> tuple[str, dict[str, Any]]:
    """Python source of ``__call__`` for ``signature`` and the names it uses (module doc)."""
    namespace: dict[str, Any] = {
        "ndarray": np.ndarray,
        "empty": np.empty,
        "aligned_empty": _aligned_empty,
        "pooled": default_pool.take,
    }
    if _DATA_OFFSET is not None:
        namespace["from_address"] = ctypes.c_void_p.from_address

    def address_of(variable: str) -> str:
        if _DATA_OFFSET is None:
            return f"{variable}.ctypes.data"
        return f"from_address(id({variable}) + {_DATA_OFFSET}).value"

    general = "return self._call_general(args, kwargs)"
    params = signature.params
    lines = _unpack_arguments(signature, general)
    type_checks = []
    for index, param in enumerate(params):
        namespace[f"dt{index}"] = to_numpy_dtype(param.dtype)
        contiguous = f"not a{index}.flags.c_contiguous"
        if invoke:
            contiguous = f"not (fl{index} := a{index}.flags).c_contiguous or not fl{index}.aligned"
        type_checks.append(
            f"type(a{index}) is not ndarray or a{index}.dtype is not dt{index} or {contiguous}"
        )
    lines += _guard(type_checks, general)

    symbol_vars: dict[str, str] = {}
    for index, param in enumerate(params):
        shape_checks = [f"len(s{index}) != {param.rank}"]
        lines.append(f"s{index} = a{index}.shape")
        bindings = []
        for axis, dim in enumerate(param.shape):
            if dim.isdigit():
                shape_checks.append(f"s{index}[{axis}] != {int(dim)}")
            elif dim in symbol_vars:
                shape_checks.append(f"s{index}[{axis}] != {symbol_vars[dim]}")
            else:
                symbol_vars[dim] = f"d{len(symbol_vars)}"
                bindings.append(f"{symbol_vars[dim]} = s{index}[{axis}]")
        lines += _guard(shape_checks, general)
        lines += bindings

    alignment_checks = []
    for index, param in enumerate(params):
        if invoke:  # checked with the flags above; addresses are read natively
            continue
        lines.append(f"p{index} = {address_of(f'a{index}')}")
        itemsize = to_numpy_dtype(param.dtype).itemsize
        if itemsize > 1:
            alignment_checks.append(f"p{index} % {itemsize}")
    lines += _guard(alignment_checks, general)

    expressions: list[str] = []  # dimension expressions evaluated through an env dict
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
                namespace[f"extent{len(expressions)}"] = compiled.evaluate
                axes.append(f"max(0, extent{len(expressions)}(env))")
                expressions.append(dim)
        shape = f"({', '.join(axes)},)" if axes else "()"
        lines.append(f"shape{index} = {shape}")
        lines += _result_allocation(index, axes, dtype, address_of, need_address=not invoke)

    missing = [name for name in dims_order if name not in symbol_vars]
    if missing:
        raise ArtifactError(f"{signature.name}: dims {missing} are not parameter sizes")
    dims_items = ", ".join(symbol_vars[name] for name in dims_order)
    if invoke:
        lines += _invoke_lines(signature, dims_order, dims_items, address_of, namespace)
    else:
        arg_items = ", ".join(f"p{index}" for index in range(len(params)))
        result_items = ", ".join(f"q{index}" for index in range(len(signature.results)))
        lines += [
            f"args_data = pack_args({arg_items})",
            f"results_data = pack_results({result_items})",
            f"dims_data = pack_dims({dims_items})",
            "if entry(args_data, results_data, dims_data, None):",
            "    self._raise_native_error(args_data, results_data, dims_data)",
        ]
    results = [f"r{index}" for index in range(len(signature.results))]
    if len(results) == 1:
        lines.append(f"return {results[0]}")
    else:
        lines.append(f"return ({''.join(f'{r}, ' for r in results)})")
    body = "\n".join(f"    {line}" for line in lines)
    return f"def __call__(self, *args, **kwargs):\n{body}\n", namespace


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

    return [
        f"nbytes{index} = {nbytes}",
        f"if nbytes{index} >= {MIN_POOLED_BYTES}:",
        *indented(pooled),
        f"elif nbytes{index} >= {ALIGN_RESULTS_FROM_BYTES}:",
        *indented(aligned),
        "else:",
        *indented(plain + address),
    ]


def _invoke_lines(
    signature: Signature,
    dims_order: Sequence[str],
    dims_items: str,
    address_of: Callable[[str], str],
    namespace: dict[str, Any],
) -> list[str]:
    """The call through the artifact's ``tensorc_invoke`` (module doc): one packet with the
    addresses of the arrays' data fields; the slow path reads the addresses to report an
    error."""
    arity, count = len(signature.params), len(signature.results)
    namespace["pack_packet"] = struct.Struct(
        f"={4 + arity + count}{_POINTER_CODE}{len(dims_order)}q"
    ).pack
    fields = [f"id(a{index}) + {_DATA_OFFSET}" for index in range(arity)]
    fields += [f"id(r{index}) + {_DATA_OFFSET}" for index in range(count)]
    header = f"entry_address, {arity}, {count}, {len(dims_order)}"
    items = ", ".join([header, *fields] + ([dims_items] if dims_items else []))
    arg_addresses = ", ".join(address_of(f"a{index}") for index in range(arity))
    result_addresses = ", ".join(address_of(f"r{index}") for index in range(count))
    return [
        f"if invoke(pack_packet({items})):",
        f"    self._raise_native_error(pack_args({arg_addresses}), "
        f"pack_results({result_addresses}), pack_dims({dims_items}))",
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


# -- modules ---------------------------------------------------------------------------------


class NativeModule:
    """A loaded artifact: one attribute (and item) per function."""

    def __init__(
        self,
        path: str,
        manifest: Mapping[str, Any],
        functions: Mapping[str, NativeFunction],
    ) -> None:
        self.path = path
        self._manifest = manifest
        self._functions = dict(functions)
        reserved = set(dir(type(self)))
        for name, function in self._functions.items():
            if name not in reserved and not name.startswith("_"):
                self.__dict__[name] = function  # plain attribute lookup on the hot path

    @property
    def manifest(self) -> Mapping[str, Any]:
        """The artifact's manifest (docs/abi.md); treat it as read-only."""
        return self._manifest

    @property
    def target(self) -> str:
        return str(self._manifest["target"])

    @property
    def functions(self) -> Mapping[str, Signature]:
        """Function names -> signatures, in manifest order."""
        return {name: function.signature for name, function in self._functions.items()}

    def __getattr__(self, name: str) -> NativeFunction:
        functions = self.__dict__.get("_functions", {})
        if name in functions:
            return functions[name]
        raise AttributeError(
            f"module {self.__dict__.get('path', '?')!r} has no function {name!r} "
            f"(it has: {', '.join(functions) or 'none'})"
        )

    def __getitem__(self, name: str) -> NativeFunction:
        try:
            return self._functions[name]
        except KeyError:
            raise KeyError(
                f"no function {name!r} (it has: {', '.join(self._functions) or 'none'})"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._functions

    def __iter__(self) -> Iterator[str]:
        return iter(self._functions)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._functions))

    def __repr__(self) -> str:
        triple = self._manifest.get("triple", "?")
        names = ", ".join(self._functions) or "no functions"
        name = os.path.basename(self.path)
        return f"<tensorc module {name!r} ({self.target}, {triple}): {names}>"


# -- loading ---------------------------------------------------------------------------------


def load(path: str | os.PathLike[str]) -> NativeModule:
    """Load the artifact at ``path``; ``ArtifactError`` if it is not one this machine can run.

    Checks, in order and before any of its code runs: the file is a readable ELF64 LE shared
    object with a valid ``.tensorc_manifest`` of a supported format version; it is built for
    this architecture; this CPU has every feature in ``cpu_features``. Then ``dlopen``s it
    (``RTLD_LOCAL``) and binds one :class:`NativeFunction` per manifest function.
    """
    where = os.fspath(path)
    manifest = read_manifest(where)
    if manifest["target"] == "cuda":
        return _load_cuda(where, manifest)
    machine = read_elf_info(where).machine
    if machine != host_arch():
        raise ArtifactError(
            f"{where}: an ELF file for {machine}, but this machine is {host_arch()}"
        )
    check_cpu(manifest, where)
    library = _dlopen(where)
    functions: dict[str, NativeFunction] = {}
    for entry in manifest["functions"]:
        function = _bind_function(library, entry, where)
        if function.name in functions:
            raise ArtifactError(f"{where}: corrupted manifest (function {function.name!r} twice)")
        functions[function.name] = function
    return NativeModule(where, manifest, functions)


def _load_cuda(path: str, manifest: Mapping[str, Any]) -> NativeModule:
    """CUDA artifacts are loaded by `tensorc_runtime.cuda` (which imports pycuda lazily and
    raises `CudaUnavailableError`, an ArtifactError, without pycuda or a GPU)."""
    from .cuda import load as load_cuda

    return load_cuda(path, manifest)


def _dlopen(path: str) -> ctypes.CDLL:
    try:
        return ctypes.CDLL(os.path.abspath(path), mode=os.RTLD_LOCAL)
    except OSError as error:
        raise ArtifactError(f"{path}: cannot load the shared object: {error}") from error


def _bind_function(library: ctypes.CDLL, entry: Mapping[str, Any], where: str) -> NativeFunction:
    signature = Signature.from_dict(entry)
    symbol = entry["symbol"]
    dims_order = list(entry.get("symbols", signature.symbols))
    unknown = [name for name in dims_order if name not in signature.symbols]
    if unknown:
        raise ArtifactError(
            f"{where}: corrupted manifest: {signature.name} lists dims {', '.join(unknown)} "
            "that no parameter shape binds"
        )
    try:
        function_pointer = library[symbol]
    except AttributeError:
        raise ArtifactError(
            f"{where}: the manifest names entry point {symbol!r}, which the file does not export"
        ) from None
    function_pointer.argtypes = None  # bytes and None pass as pointers unconverted
    function_pointer.restype = ctypes.c_int32
    return _specialized_function(signature, function_pointer, symbol, dims_order, library)

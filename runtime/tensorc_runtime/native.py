"""Loading a CPU artifact and calling its entry points (docs/abi.md), with only NumPy.

    mod = load("model.so")        # ArtifactError for anything that is not a loadable artifact
    out = mod.mlp(x, w1, b1)      # checked like SPEC section 4; NumPy in, NumPy out
    mod.functions                 # names -> Signature

Loading reads and validates the manifest from the ELF section headers and checks the
architecture and CPU features *before* ``dlopen``, so a foreign, corrupted or incompatible
file never runs any code.

The call path
-------------
Each function gets a ``__call__`` generated for its signature (fastcall.py), which handles
the common call -- NumPy arrays of exactly the parameter dtypes, C-contiguous and aligned --
with straight-line code: it checks every argument exactly as :meth:`Signature.bind` would
(type, dtype, rank, static sizes, symbolic sizes, constraints), allocates the results, and
calls the entry point through ctypes, which releases the GIL. Any argument it does not accept
as is (a Python scalar, another dtype, a strided array, a failed check) sends the call to the
general path, :meth:`Signature.bind` plus the same call, which converts what it may and raises
the documented errors. Both paths give identical results and errors.

The entry point's ``args``, ``results`` and ``dims`` arrays are ``bytes`` objects packed
with ``struct`` (the entry point only reads them), passed with ``argtypes`` unset so that
ctypes hands over their buffers without converting anything: this halves the cost of the
foreign call compared with ctypes arrays and ``c_void_p`` arguments. ``error`` is NULL; when
the entry point fails, the call is repeated with a fresh ``tensorc_error`` to read the
message (entry points have no effect besides writing their results, docs/abi.md), so
success costs nothing for error reporting.

Artifacts that export ``__tensorc_invoke_checked`` or ``__tensorc_invoke`` (docs/abi.md) are
called through them instead: the generated code packs, in one ``struct`` call, the entry
point's address and the addresses of the arguments' and results' ``data`` members
(``id(array)`` plus an offset verified at import, layout.py), and the artifact reads the data
addresses, and with ``__tensorc_invoke_checked`` the arguments' flags, natively. For ``x + 1``
on 8 elements here this took a call from 1.5 us (packed addresses) to 1.1 us (invoke) and
then to about 0.9 us (invoke_checked and named parameters). Artifacts of format version 1
named them ``tensorc_invoke_checked`` and ``tensorc_invoke`` (:func:`invoke_symbols`).
"""

from __future__ import annotations

import ctypes
import inspect
import os
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .cpu import check_cpu, host_arch
from .dtypes import to_numpy_dtype
from .elf import ArtifactFile, open_artifact
from .errors import ArtifactError
from .fastcall import (
    ALIGN_RESULTS_FROM_BYTES,
    CHECKED,
    INVOKE,
    INVOKE_MAX_ARRAYS,
    MISSING,
    PLAIN,
    POINTER_CODE,
    RESULT_ALIGNMENT,
    aligned_empty,
    fast_call,
)
from .layout import DATA_OFFSET, FLAGS_OFFSET, data_address
from .library import open_library
from .pool import MIN_POOLED_BYTES, default_pool
from .signature import Signature

__all__ = [
    "ALIGN_RESULTS_FROM_BYTES",
    "ERROR_CODES",
    "RESERVED_NAMESPACE_FORMAT_VERSION",
    "RESULT_ALIGNMENT",
    "NativeFunction",
    "NativeModule",
    "TensorcError",
    "invoke_symbols",
    "load",
]

CUDA_MESSAGE = "this is a CUDA artifact; loading it needs pycuda and an NVIDIA GPU"
# The fast-call functions of an artifact (docs/abi.md). From format version 2 on every symbol
# but the entry points is in the reserved `__tensorc_` namespace: there, `tensorc_invoke` is
# the entry point of a function called `invoke` and is never looked up. Version 1 had none.
RESERVED_NAMESPACE_FORMAT_VERSION = 2


class TensorcError(ctypes.Structure):
    """``struct tensorc_error`` of docs/abi.md."""

    _fields_ = [
        ("code", ctypes.c_int32),
        ("op", ctypes.c_int32),
        ("detail", ctypes.c_int64 * 4),
        ("message", ctypes.c_char * 256),
    ]


ERROR_CODES: Mapping[int, type[Exception]] = {1: IndexError, 2: ValueError, 3: MemoryError}


def _packer(count: int, code: str) -> Callable[..., bytes | None]:
    """Packs ``count`` values into native bytes; with no values, gives NULL (None)."""
    if count == 0:
        return lambda: None
    return struct.Struct(f"={count}{code}").pack


# -- results ---------------------------------------------------------------------------------


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
        return aligned_empty(shape, dtype)
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
        self._pack_args = _packer(self._arity, POINTER_CODE)
        self._pack_results = _packer(self._result_count, POINTER_CODE)
        self._pack_dims = _packer(len(self.dims_order), "q")

    @property
    def name(self) -> str:
        return self.signature.name

    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        return self._call_general(args, kwargs)

    def _call_general(self, args: Sequence[Any], kwargs: Mapping[str, Any] | None) -> Any:
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

    def _call_named(self, extra: tuple[Any, ...], values: tuple[Any, ...]) -> Any:
        """The general path of a named fast call (fastcall.py) that Python could not bind
        whole: `extra` holds positional arguments beyond the parameters, and `values` the
        parameters' arguments, MISSING where none was given."""
        if extra:  # then every parameter was given by position
            return self._call_general((*values, *extra), None)
        given = {
            param.name: value
            for param, value in zip(self.signature.params, values)
            if value is not MISSING
        }
        return self._call_general((), given)

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
    format_version: int,
) -> NativeFunction:
    """A NativeFunction whose class has a ``__call__`` generated for this signature."""
    if not _numpy_has_dtypes(signature):  # bf16: every call takes the general path (TypeError)
        return NativeFunction(signature, entry, symbol, dims_order, library)
    native, invoke = _native_call(library, signature, format_version)
    generated = fast_call(signature, dims_order, native)
    namespace = generated.namespace
    namespace.update(
        entry=entry,
        invoke=invoke,
        entry_address=ctypes.cast(entry, ctypes.c_void_p).value,
        pack_args=_packer(len(signature.params), POINTER_CODE),
        pack_results=_packer(len(signature.results), POINTER_CODE),
        pack_dims=_packer(len(dims_order), "q"),
    )
    filename = f"<tensorc_runtime: {signature.name}.__call__>"
    exec(compile(generated.source, filename, "exec"), namespace)
    call = namespace["__call__"]
    if generated.named:  # Python's own binding errors then name the tensorc function
        call.__code__ = call.__code__.replace(co_name=signature.name)
        call.__qualname__ = signature.name
    call.__doc__ = f"Call {signature} ({symbol})."
    call.__signature__ = _python_signature(signature)  # what help() and inspect show
    specialized = type(
        "NativeFunction",
        (NativeFunction,),
        {"__call__": call, "__module__": __name__, "_source": generated.source},
    )
    return specialized(signature, entry, symbol, dims_order, library)


def _python_signature(signature: Signature) -> inspect.Signature | None:
    """``(self, x: 'f32[N]', ...) -> 'f32[N]'``: the parameters a call takes, whichever way
    the generated ``__call__`` spells them; None where a name is not a Python identifier."""
    results = [result.type_str() for result in signature.results]
    returns = results[0] if len(results) == 1 else f"({', '.join(results)})"
    names = {param.name for param in signature.params}
    receiver = "self"
    while receiver in names:  # a tensorc parameter may be called `self`
        receiver = f"_{receiver}"
    try:
        params = [inspect.Parameter(receiver, inspect.Parameter.POSITIONAL_ONLY)] + [
            inspect.Parameter(
                param.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=param.type_str()
            )
            for param in signature.params
        ]
        return inspect.Signature(params, return_annotation=returns)
    except ValueError:
        return None


def invoke_symbols(format_version: int) -> Mapping[str, str]:
    """The names of the fast-call functions (CHECKED, INVOKE) in an artifact of
    ``format_version``, one that `load` accepted (``elf.SUPPORTED_FORMAT_VERSIONS``)."""
    reserved = format_version >= RESERVED_NAMESPACE_FORMAT_VERSION
    prefix = "__tensorc_" if reserved else "tensorc_"
    return {CHECKED: f"{prefix}invoke_checked", INVOKE: f"{prefix}invoke"}


def _native_call(
    library: ctypes.CDLL, signature: Signature, format_version: int
) -> tuple[str, Callable | None]:
    """How the fast call reaches native code (fastcall.py): the artifact's invoke_checked
    when it has one and both NumPy offsets are verified, else its invoke when the data offset
    is (under their names for ``format_version``, `invoke_symbols`); else the entry point with
    packed addresses (older artifacts, other Pythons, more arrays than a packet holds)."""
    arrays = max(len(signature.params), len(signature.results))
    if DATA_OFFSET is None or arrays > INVOKE_MAX_ARRAYS:
        return PLAIN, None
    symbols = invoke_symbols(format_version)
    for native, usable in ((CHECKED, FLAGS_OFFSET is not None), (INVOKE, True)):
        if not usable:
            continue
        try:
            invoke = library[symbols[native]]
        except AttributeError:
            continue
        invoke.argtypes = None
        invoke.restype = ctypes.c_int32
        return native, invoke
    return PLAIN, None


def _numpy_has_dtypes(signature: Signature) -> bool:
    try:
        for spec in (*signature.params, *signature.results):
            to_numpy_dtype(spec.dtype)
    except TypeError:
        return False
    return True


# -- modules ---------------------------------------------------------------------------------


class NativeModule:
    """A loaded artifact: one attribute (and item) per function."""

    def __init__(
        self,
        path: str,
        manifest: Mapping[str, Any],
        functions: Mapping[str, NativeFunction],
    ) -> None:
        self._path = path
        self._manifest = manifest
        self._functions = dict(functions)
        reserved = set(dir(type(self)))  # a function called `target` is reachable as mod["target"]
        for name, function in self._functions.items():
            if name not in reserved and not name.startswith("_"):
                self.__dict__[name] = function  # plain attribute lookup on the hot path

    @property
    def path(self) -> str:
        """The artifact's path, as given to `load`."""
        return self._path

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
            f"module {self.__dict__.get('_path', '?')!r} has no function {name!r} "
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

    The manifest and the code come from one version of the file: an artifact rebuilt at a
    path loaded before gets its own library (library.py), while modules loaded earlier keep
    running their own code.
    """
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"load(): path must be a str or os.PathLike, not {type(path).__name__}")
    where = os.fsdecode(path)
    with open_artifact(where) as artifact:  # the manifest and the code of one file version
        manifest = artifact.manifest()
        if manifest["target"] == "cuda":
            return _load_cuda(artifact, manifest)
        machine = artifact.info().machine
        if machine != host_arch():
            raise ArtifactError(
                f"{where}: an ELF file for {machine}, but this machine is {host_arch()}"
            )
        check_cpu(manifest, where)
        library = open_library(artifact)
    functions: dict[str, NativeFunction] = {}
    for entry in manifest["functions"]:
        function = _bind_function(library, entry, where, manifest["format_version"])
        if function.name in functions:
            raise ArtifactError(f"{where}: corrupted manifest (function {function.name!r} twice)")
        functions[function.name] = function
    return NativeModule(where, manifest, functions)


def _load_cuda(artifact: ArtifactFile, manifest: Mapping[str, Any]) -> NativeModule:
    """CUDA artifacts are loaded by `tensorc_runtime.cuda` (which imports pycuda lazily and
    raises `CudaUnavailableError`, an ArtifactError, without pycuda or a GPU). They are not
    dlopened: their PTX or cubin is read from the same open file as the manifest."""
    from .cuda import load as load_cuda

    return load_cuda(artifact.path, manifest, artifact=artifact)


def _bind_function(
    library: ctypes.CDLL, entry: Mapping[str, Any], where: str, format_version: int
) -> NativeFunction:
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
    return _specialized_function(
        signature, function_pointer, symbol, dims_order, library, format_version
    )

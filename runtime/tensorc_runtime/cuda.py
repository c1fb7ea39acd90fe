"""Loading a CUDA artifact and running its functions by following its launch plan.

    mod = tensorc_runtime.load("model.so")    # a "cuda" manifest: loaded here (pycuda)
    out = mod.mlp(x, w1, b1, w2, b2)          # NumPy in -> NumPy out (copied in and out)
    out = mod.mlp(x_gpu, w1_gpu, ...)         # device arrays in place -> device arrays out

pycuda is imported lazily, when the first CUDA artifact is loaded. Without pycuda, or
without a usable NVIDIA GPU, loading raises `CudaUnavailableError` (an `ArtifactError`)
saying which is missing; nothing else happens and nothing crashes.

Loading: the manifest's `"cuda"` object (docs/abi.md) names the ELF sections holding the PTX
and, when ptxas was available at compile time, a cubin for the artifact's `arch`; both are
read from the file and checked against their SHA-256. The cubin is used when it was built for
the device's architecture, else the PTX (JIT-compiled by the driver, which needs a device at
least as new as `arch`). Constant buffers are uploaded once.

A call:
1. binds the arguments like the CPU runtime (`Signature.bind`: the same checks, errors and
   conversions). Device arrays -- anything with `__cuda_array_interface__`, or a pycuda
   `GPUArray` -- must be C-contiguous and of exactly the parameter's dtype (they are used in
   place, never converted); their shapes are checked like NumPy arrays';
2. takes device memory from the device's pool: one buffer per NumPy argument (copied in) and
   per result, one arena for the temporaries (a region per reuse slot), the error words;
3. runs the plan's steps on one stream: launches (grid and block evaluated from the symbolic
   sizes; a launch with an empty grid is skipped; `TENSORC_CUDA_SYNC=1` synchronises after
   each one so that a fault names its kernel), zero fills and device-to-device copies;
4. synchronises, reads the error words (an out-of-range index raises `IndexError` with the
   CPU's message) and copies NumPy results out. When any argument was a device array, the
   results are device arrays of the device (pycuda `GPUArray`s), owned by the caller.

Calls are serialised by a lock per device (they share its stream), so calling from many
threads is safe.
The device is an object with a small interface (`PycudaDevice`); tests pass another one
(`tensorc.codegen.cuda.emulator.EmulatedDevice`) to follow plans on the CPU.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from .dims import compile_dim
from .dtypes import to_numpy_dtype
from .elf import ArtifactFile, open_artifact
from .errors import ArtifactError
from .native import NativeModule
from .signature import Signature

__all__ = ["CudaFunction", "CudaModule", "CudaUnavailableError", "PycudaDevice", "load"]

CUDA_MESSAGE = "this is a CUDA artifact; loading it needs pycuda and an NVIDIA GPU"
SYNC_ENVIRONMENT = "TENSORC_CUDA_SYNC"
ARENA_ALIGNMENT = 256
NO_ERROR = (1 << 64) - 1
INDEX_MESSAGE = "{op}: index {index} is out of range for axis {axis} with size {size}"


class CudaUnavailableError(ArtifactError):
    """A CUDA artifact cannot be loaded here: pycuda or a usable NVIDIA GPU is missing."""


# -- the device ------------------------------------------------------------------------------


class PycudaDevice:
    """The GPU through pycuda: the primary context of one device, a stream, a memory pool."""

    def __init__(self, ordinal: int = 0) -> None:
        import pycuda.driver as driver

        driver.init()
        if driver.Device.count() <= ordinal:
            raise RuntimeError(f"the driver sees {driver.Device.count()} CUDA device(s)")
        self.driver = driver
        self.device = driver.Device(ordinal)
        self.context = self.device.retain_primary_context()
        self.compute_capability = tuple(self.device.compute_capability())
        self.name = self.device.name()
        self.lock = threading.Lock()  # calls take turns on the one stream
        # Like pycuda.autoprimaryctx: the primary context stays current on this thread, so
        # that the caller can use the device arrays it gets back (`.get()`) right away.
        self.context.push()
        atexit.register(self._release)
        import pycuda.tools

        self.pool = pycuda.tools.DeviceMemoryPool()
        self.stream = driver.Stream()

    def _release(self) -> None:
        try:
            self.pool.stop_holding()
            self.driver.Context.pop()
        except Exception:  # another thread's context, or the driver already shut down
            pass

    @contextmanager
    def activate(self) -> Iterator[None]:
        """Make the primary context current for a call (a no-op where it already is)."""
        current = self.driver.Context.get_current()
        if current is not None and current.handle == self.context.handle:
            yield
            return
        self.context.push()
        try:
            yield
        finally:
            self.driver.Context.pop()

    def load_module(self, image: bytes, kind: str) -> Any:
        return self.driver.module_from_buffer(image)

    def kernel(self, module: Any, name: str, param_format: str) -> Any:
        function = module.get_function(name)
        function.prepare(param_format)
        return function

    def allocate(self, nbytes: int) -> Any:
        return self.pool.allocate(nbytes)

    def upload(self, pointer: int, array: np.ndarray) -> None:
        self.driver.memcpy_htod_async(pointer, array, self.stream)

    def download(self, array: np.ndarray, pointer: int) -> None:
        self.driver.memcpy_dtoh_async(array, pointer, self.stream)

    def copy(self, destination: int, source: int, nbytes: int) -> None:
        self.driver.memcpy_dtod_async(destination, source, nbytes, self.stream)

    def fill(self, pointer: int, byte: int, nbytes: int) -> None:
        self.driver.memset_d8_async(pointer, byte, nbytes, self.stream)

    def launch(self, kernel: Any, grid: int, block: int, params: Sequence[int]) -> None:
        kernel.prepared_async_call((grid, 1), (block, 1, 1), self.stream, *params)

    def synchronize(self) -> None:
        self.stream.synchronize()

    def empty(self, shape: Sequence[int], dtype: np.dtype) -> tuple[Any, int]:
        from pycuda import gpuarray

        array = gpuarray.empty(tuple(shape), dtype, allocator=self.pool.allocate)
        return array, int(array.gpudata) if array.gpudata is not None else 0


_DEVICE: Any = None
_DEVICE_LOCK = threading.Lock()


def default_device(where: str = "artifact") -> Any:
    """The process's `PycudaDevice` (created once), or CudaUnavailableError saying why not."""
    global _DEVICE
    with _DEVICE_LOCK:
        if _DEVICE is not None:
            return _DEVICE
        try:
            import pycuda.driver  # noqa: F401
        except ImportError as error:
            raise CudaUnavailableError(
                f"{where}: {CUDA_MESSAGE}: pycuda is not installed ({error}); install it with "
                "`pip install pycuda` on a machine with the CUDA toolkit and an NVIDIA driver"
            ) from None
        try:
            _DEVICE = PycudaDevice()
        except Exception as error:  # cuInit failures, no device, a broken driver
            raise CudaUnavailableError(
                f"{where}: {CUDA_MESSAGE}: no usable NVIDIA GPU ({type(error).__name__}: "
                f"{error})"
            ) from None
        return _DEVICE


# -- the plan --------------------------------------------------------------------------------


def _fail(where: str, reason: str) -> ArtifactError:
    return ArtifactError(f"{where}: corrupted manifest ({reason})")


@dataclass
class _Buffer:
    id: int
    dtype: np.dtype
    shape: tuple[Callable[[Mapping[str, int]], int], ...]
    role: str
    index: int | None
    slot: int | None
    alias_of: int | None
    data: bytes | None

    def nbytes(self, env: Mapping[str, int]) -> int:
        count = 1
        for extent in self.shape:
            count *= max(0, extent(env))
        return count * self.dtype.itemsize

    def extents(self, env: Mapping[str, int]) -> tuple[int, ...]:
        return tuple(max(0, extent(env)) for extent in self.shape)


@dataclass
class _Launch:
    kernel: str
    op: int
    grid: Callable[[Mapping[str, int]], int]
    block: Callable[[Mapping[str, int]], int]
    params: list[tuple[str, Any]]
    handle: Any = None

    @property
    def param_format(self) -> str:
        return "".join("q" if kind == "symbol" else "P" for kind, _ in self.params)


@dataclass
class _Check:
    op: str
    indices: int
    axis: int
    size: Callable[[Mapping[str, int]], int]


class _FunctionPlan:
    """A function's launch plan from the manifest, validated and with expressions compiled."""

    def __init__(self, name: str, plan: Any, where: str) -> None:
        if not isinstance(plan, dict):
            raise _fail(where, f"no launch plan for {name!r}")
        try:
            self.symbols = [str(s) for s in plan["symbols"]]
            self.buffers = {entry["id"]: self._buffer(entry) for entry in plan["buffers"]}
            self.slots = int(plan["slots"])
            self.checks = [
                _Check(c["op"], int(c["indices"]), int(c["axis"]), compile_dim(c["size"]))
                for c in plan["checks"]
            ]
            self.steps = [self._step(step) for step in plan["steps"]]
        except (KeyError, TypeError, ValueError) as error:
            raise _fail(
                where, f"launch plan of {name!r}: {type(error).__name__}: {error}"
            ) from None
        referenced = [b.alias_of for b in self.buffers.values() if b.alias_of is not None]
        referenced += [c.indices for c in self.checks]
        for step in self.steps:
            if isinstance(step, _Launch):
                referenced += [v for kind, v in step.params if kind == "buffer"]
            elif step[0] == "copy":
                referenced += [step[1], step[2]]
            else:
                referenced.append(step[1])
        missing = sorted({r for r in referenced if r not in self.buffers})
        if missing:
            raise _fail(where, f"launch plan of {name!r} refers to unknown buffers {missing}")

    @staticmethod
    def _buffer(entry: Mapping[str, Any]) -> _Buffer:
        role = entry["role"]
        if role not in ("input", "output", "temporary", "alias", "constant"):
            raise ValueError(f"unknown buffer role {role!r}")
        data = entry.get("data")
        return _Buffer(
            id=int(entry["id"]),
            dtype=to_numpy_dtype(entry["dtype"]),
            shape=tuple(compile_dim(str(d)) for d in entry["shape"]),
            role=role,
            index=entry.get("index"),
            slot=entry.get("slot"),
            alias_of=entry.get("of"),
            data=None if data is None else _b64decode(data),
        )

    @staticmethod
    def _step(step: Mapping[str, Any]) -> Any:
        kind = step["kind"]
        if kind == "launch":
            params: list[tuple[str, Any]] = []
            for param in step["params"]:
                (key, value), = param.items()
                if key not in ("buffer", "symbol", "error"):
                    raise ValueError(f"unknown kernel parameter {param!r}")
                params.append((key, value))
            return _Launch(step["kernel"], int(step.get("op", -1)),
                           compile_dim(step["grid"][0]), compile_dim(step["block"][0]), params)
        if kind == "copy":
            return ("copy", int(step["src"]), int(step["dst"]))
        if kind == "zero":
            return ("zero", int(step["buffer"]))
        raise ValueError(f"unknown step kind {kind!r}")

    def launches(self) -> list[_Launch]:
        return [step for step in self.steps if isinstance(step, _Launch)]


def _b64decode(text: str) -> bytes:
    import base64

    return base64.b64decode(text.encode("ascii"), validate=True)


# -- device arrays ---------------------------------------------------------------------------


@dataclass
class _DeviceArgument:
    pointer: int
    shape: tuple[int, ...]
    dtype: np.dtype


def device_argument(value: Any) -> _DeviceArgument | None:
    """A device array's pointer, shape and dtype; None for anything else."""
    interface = getattr(value, "__cuda_array_interface__", None)
    if isinstance(interface, Mapping):
        shape = tuple(int(s) for s in interface["shape"])
        dtype = np.dtype(interface["typestr"])
        strides = interface.get("strides")
        if interface.get("mask") is not None:
            raise ValueError("masked device arrays are not supported")
        empty = any(extent == 0 for extent in shape)
        if strides is not None and not empty and tuple(strides) != _c_strides(shape,
                                                                              dtype.itemsize):
            raise ValueError(
                f"device arrays must be C-contiguous (shape {shape}, strides {tuple(strides)});"
                " copy it first"
            )
        return _DeviceArgument(int(interface["data"][0] or 0), shape, dtype)
    gpudata = getattr(value, "gpudata", None)
    if gpudata is not None or (hasattr(value, "gpudata") and hasattr(value, "shape")):
        flags = getattr(value, "flags", None)
        if flags is not None and not getattr(flags, "c_contiguous", True):
            raise ValueError("device arrays must be C-contiguous; copy it first")
        return _DeviceArgument(int(gpudata) if gpudata is not None else 0,
                               tuple(value.shape), np.dtype(value.dtype))
    return None


def _c_strides(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    strides = []
    step = itemsize
    for extent in reversed(shape):
        strides.append(step)
        step *= max(extent, 1)
    return tuple(reversed(strides))


def _stand_in(argument: _DeviceArgument) -> np.ndarray:
    """A host array with the device array's shape and dtype and no memory of its own, for
    `Signature.bind` (which only reads its metadata: its dtype is checked exactly first)."""
    base = np.zeros(1, dtype=argument.dtype)
    strides = _c_strides(argument.shape, argument.dtype.itemsize)
    return np.lib.stride_tricks.as_strided(base, argument.shape, strides, writeable=False)


# -- functions -------------------------------------------------------------------------------


class CudaFunction:
    """One function of a loaded CUDA artifact; call it like the tensorc function."""

    def __init__(self, module: CudaModule, signature: Signature, plan: _FunctionPlan,
                 constants: Mapping[int, Any]) -> None:
        self.signature = signature
        self.symbol = f"tensorc_{signature.name}"
        self.__name__ = signature.name
        self._module = module
        self._plan = plan
        self._constants = constants
        self._param_dtypes = [to_numpy_dtype(p.dtype) for p in signature.params]
        self._param_index = {p.name: i for i, p in enumerate(signature.params)}

    @property
    def name(self) -> str:
        return self.signature.name

    @property
    def plan(self) -> _FunctionPlan:
        return self._plan

    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        devices: dict[int, _DeviceArgument] = {}
        args = tuple(self._host_view(value, i, devices) for i, value in enumerate(args))
        kwargs = {
            key: self._host_view(value, self._param_index.get(key), devices)
            for key, value in kwargs.items()
        }
        bound = self.signature.bind(args, kwargs)
        sources = [devices.get(id(array)) for array in bound.arrays]
        on_device = any(source is not None for source in sources)
        module = self._module
        with module.lock, module.device.activate():
            return self._run(bound, sources, on_device)

    def _host_view(self, value: Any, index: int | None, devices: dict[int, _DeviceArgument]):
        argument = device_argument(value)
        if argument is None:
            return value
        if index is not None and index < len(self._param_dtypes):
            expected = self._param_dtypes[index]
            if argument.dtype != expected:
                param = self.signature.params[index]
                raise TypeError(
                    f"{self.name}(): parameter {param.name!r} expects {param.dtype}, got a "
                    f"device array of {argument.dtype.name} (device arrays are used in place, "
                    "never converted)"
                )
        stand_in = _stand_in(argument)
        devices[id(stand_in)] = argument
        return stand_in

    def _run(self, bound: Any, sources: Sequence[_DeviceArgument | None],
             on_device: bool) -> Any:
        device, plan, env = self._module.device, self._plan, bound.dims
        keep: list[Any] = []
        pointers: dict[int, int] = {}
        results: list[Any] = [None] * len(self.signature.results)

        def allocate(nbytes: int) -> int:
            if nbytes == 0:
                return 0
            allocation = device.allocate(nbytes)
            keep.append(allocation)
            return int(allocation)

        temporaries = [b for b in plan.buffers.values() if b.role == "temporary"]
        slot_bytes = [0] * plan.slots
        for buffer in temporaries:
            slot_bytes[buffer.slot] = max(slot_bytes[buffer.slot], buffer.nbytes(env))
        offsets, total = [], 0
        for size in slot_bytes:
            offsets.append(total)
            total += -(-size // ARENA_ALIGNMENT) * ARENA_ALIGNMENT
        arena = allocate(total)
        for buffer in sorted(plan.buffers.values(), key=lambda b: b.id):
            if buffer.role == "input":
                source = sources[buffer.index]
                if source is not None:
                    pointers[buffer.id] = source.pointer
                    continue
                array = bound.arrays[buffer.index]
                pointers[buffer.id] = allocate(array.nbytes)
                if array.nbytes:
                    device.upload(pointers[buffer.id], array)
            elif buffer.role == "output":
                shape, nbytes = buffer.extents(env), buffer.nbytes(env)
                if on_device:
                    results[buffer.index], pointers[buffer.id] = device.empty(shape, buffer.dtype)
                else:
                    results[buffer.index] = np.empty(shape, buffer.dtype)
                    pointers[buffer.id] = allocate(nbytes)
            elif buffer.role == "temporary":
                pointers[buffer.id] = arena + offsets[buffer.slot] if arena else 0
            elif buffer.role == "alias":
                pointers[buffer.id] = pointers[buffer.alias_of]
            else:
                pointers[buffer.id] = self._constants[buffer.id]
        errors = allocate(8 * len(plan.checks))
        if errors:
            device.fill(errors, 0xFF, 8 * len(plan.checks))
        self._steps(env, pointers, errors)
        if not on_device:
            for buffer in plan.buffers.values():
                if buffer.role == "output" and results[buffer.index].nbytes:
                    device.download(results[buffer.index], pointers[buffer.id])
        device.synchronize()
        if errors:
            self._raise_index_error(env, pointers, errors)
        return results[0] if len(results) == 1 else tuple(results)

    def _steps(self, env: Mapping[str, int], pointers: Mapping[int, int], errors: int) -> None:
        device, plan = self._module.device, self._plan
        synchronous = os.environ.get(SYNC_ENVIRONMENT, "") not in ("", "0")
        for step in plan.steps:
            if not isinstance(step, _Launch):
                if step[0] == "copy":
                    nbytes = plan.buffers[step[2]].nbytes(env)
                    if nbytes:
                        device.copy(pointers[step[2]], pointers[step[1]], nbytes)
                else:
                    nbytes = plan.buffers[step[1]].nbytes(env)
                    if nbytes:
                        device.fill(pointers[step[1]], 0, nbytes)
                continue
            grid, block = step.grid(env), step.block(env)
            if grid <= 0 or block <= 0:
                continue
            params = []
            for kind, value in step.params:
                if kind == "buffer":
                    params.append(pointers[value])
                elif kind == "symbol":
                    params.append(env[value])
                else:
                    params.append(errors + 8 * value)
            try:
                device.launch(step.handle, grid, block, params)
                if synchronous:
                    device.synchronize()
            except Exception as error:
                raise RuntimeError(
                    f"{self.name}(): kernel {step.kernel} (op {step.op}, grid {grid}, block "
                    f"{block}) failed: {type(error).__name__}: {error}"
                ) from error

    def _raise_index_error(self, env: Mapping[str, int], pointers: Mapping[int, int],
                           errors: int) -> None:
        device, plan = self._module.device, self._plan
        words = np.empty(len(plan.checks), dtype=np.uint64)
        device.download(words, errors)
        device.synchronize()
        for check, word in zip(plan.checks, words.tolist()):
            if word == NO_ERROR:
                continue
            indices = plan.buffers[check.indices]
            value = np.empty(1, dtype=indices.dtype)
            device.download(value, pointers[check.indices] + int(word) * indices.dtype.itemsize)
            device.synchronize()
            raise IndexError(INDEX_MESSAGE.format(
                op=check.op, index=int(value[0]), axis=check.axis, size=max(0, check.size(env))
            ))

    def __repr__(self) -> str:
        return f"<tensorc CUDA function {self.signature}>"


# -- modules and loading -----------------------------------------------------------------------


class CudaModule(NativeModule):
    """A loaded CUDA artifact: one attribute (and item) per function, like a CPU module."""

    def __init__(self, path: str, manifest: Mapping[str, Any], device: Any) -> None:
        self.device = device
        self.lock = getattr(device, "lock", None) or threading.Lock()  # one stream a device
        functions: dict[str, CudaFunction] = {}
        super().__init__(path, manifest, functions)
        self._functions = functions

    def __repr__(self) -> str:
        names = ", ".join(self._functions) or "no functions"
        arch = self._manifest.get("arch")
        return (f"<tensorc module {os.path.basename(self.path)!r} (cuda, {arch}, on "
                f"{getattr(self.device, 'name', 'a device')}): {names}>")


def load(path: str | os.PathLike[str], manifest: Mapping[str, Any] | None = None,
         device: Any = None, *, artifact: ArtifactFile | None = None) -> CudaModule:
    """Load the CUDA artifact at `path` on `device` (default: the GPU, through pycuda).

    The manifest and the PTX or cubin are read from one open file (`artifact`, else `path`
    opened here), so they come from one version of it even if the path is rebuilt meanwhile.
    Nothing is dlopened: the image is handed to the device as bytes."""
    where = os.fspath(path)
    if artifact is None:
        with open_artifact(where) as opened:
            return load(where, manifest, device, artifact=opened)
    if manifest is None:
        manifest = artifact.manifest()
    if manifest.get("target") != "cuda":
        raise ArtifactError(f"{where}: not a CUDA artifact (target {manifest.get('target')!r})")
    if device is None:
        device = default_device(where)
    section = manifest.get("cuda")
    if not isinstance(section, dict) or not isinstance(section.get("functions"), dict):
        raise _fail(where, "no 'cuda' object with launch plans")
    kind, image = _choose_image(artifact, where, manifest, section, device)
    module = CudaModule(where, manifest, device)
    with device.activate():
        handle = device.load_module(image, kind)
        for entry in manifest["functions"]:
            signature = Signature.from_dict(entry)
            plan = _FunctionPlan(signature.name, section["functions"].get(signature.name), where)
            for launch in plan.launches():
                launch.handle = device.kernel(handle, launch.kernel, launch.param_format)
            constants = _upload_constants(device, plan, module)
            module._functions[signature.name] = CudaFunction(module, signature, plan, constants)
    module.__dict__.update(
        {name: f for name, f in module._functions.items()
         if name not in set(dir(type(module))) and not name.startswith("_")}
    )
    return module


def _choose_image(artifact: ArtifactFile, where: str, manifest: Mapping[str, Any],
                  section: Mapping[str, Any], device: Any) -> tuple[str, bytes]:
    """("cubin", bytes) when the cubin matches the device, else ("ptx", NUL-terminated)."""
    major, minor = device.compute_capability
    device_arch = f"sm_{major}{minor}"
    cubin = section.get("cubin")
    if isinstance(cubin, dict) and cubin.get("arch") == device_arch:
        return "cubin", _read_image(artifact, where, cubin)
    arch = str(manifest.get("arch") or "")
    wanted = int(arch[3:]) if arch[3:].isdigit() else 0
    if major * 10 + minor < wanted:
        raise ArtifactError(
            f"{where}: built for {arch}, but the GPU ({getattr(device, 'name', '?')}) is "
            f"{device_arch}: compile it with --arch={device_arch}"
        )
    ptx = section.get("ptx")
    if not isinstance(ptx, dict):
        raise _fail(where, "no PTX")
    data = _read_image(artifact, where, ptx)
    return "ptx", data if data.endswith(b"\0") else data + b"\0"


def _read_image(artifact: ArtifactFile, where: str, entry: Mapping[str, Any]) -> bytes:
    name = entry.get("section")
    data = artifact.section(name) if isinstance(name, str) else None
    if data is None:
        raise _fail(where, f"section {name!r} is missing")
    digest = entry.get("sha256")
    payload = data[:-1] if data.endswith(b"\0") and entry.get("bytes") == len(data) - 1 else data
    if digest is not None and hashlib.sha256(payload).hexdigest() != digest:
        raise ArtifactError(f"{where}: corrupted file (section {name} fails its checksum)")
    return data


def _upload_constants(device: Any, plan: _FunctionPlan, module: CudaModule) -> dict[int, int]:
    """Constant buffers, uploaded once (kept alive by the module)."""
    pointers: dict[int, int] = {}
    keep = module.__dict__.setdefault("_constant_allocations", [])
    for buffer in plan.buffers.values():
        if buffer.role != "constant" or buffer.data is None:
            continue
        if not buffer.data:
            pointers[buffer.id] = 0
            continue
        allocation = device.allocate(len(buffer.data))
        keep.append(allocation)
        device.upload(int(allocation), np.frombuffer(buffer.data, dtype=np.uint8))
        pointers[buffer.id] = int(allocation)
    device.synchronize()
    return pointers

"""Running the CUDA backend's kernels on the CPU, to test them (and the runtime) without a GPU.

The kernels are lowered a second time with `HostTarget` instead of `NvptxTarget`: the same
IR except that special registers, barriers and warp shuffles are calls into a small C
runtime (`_RUNTIME_C`) and shared memory is an ordinary global. The module is compiled for
the host and linked with that runtime into a shared object. A launch runs one POSIX thread
per GPU thread of a block, for each block in turn:

- `tid`/`ctaid` are thread-local, `ntid`/`nctaid` the launch's sizes;
- `bar.sync` is a barrier of the block's threads, a shuffle a barrier of the warp's 32
  threads around an exchange array (so a barrier or shuffle that not every thread reaches
  deadlocks, as on a GPU: a timeout turns that into a failed launch instead of a hang);
- blocks run one after another (shared memory is reused between them, as on a GPU).

`EmulatedDevice` implements the device interface of `tensorc_runtime.cuda` with host memory,
so that `tensorc_runtime.cuda.load(path, device=EmulatedDevice(build))` follows an
artifact's launch plan exactly as on a GPU. Memory is host memory: buffers are NumPy arrays
and device pointers are their addresses.
"""

from __future__ import annotations

import ctypes
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import llvmlite.ir as ir
import numpy as np

from tensorc.codegen.artifact import build_shared_object, host_target
from tensorc.codegen.cuda.lower import lower_module
from tensorc.codegen.cuda.target import I32, I64, PTR, VOID, GpuTarget
from tensorc.ir.dialects.func import Module

BARRIER_TIMEOUT_SECONDS = 20
# A kernel's wrapper is `<kernel>.emu`: the `.` keeps it apart from every kernel name, and the
# runtime's functions are `__tensorc_emu_*` (docs/abi.md's reserved namespace).
WRAPPER_SUFFIX = ".emu"

_RUNTIME_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

typedef void (*wrapper_fn)(const uint64_t *params);

typedef struct {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int count, waiting, generation;
} emu_barrier;

static __thread int32_t emu_tid, emu_ctaid;
static int32_t emu_ntid, emu_nctaid;
static volatile int emu_failed;
static emu_barrier block_barrier;
static emu_barrier warp_barriers[32];
static int32_t exchange[1024];

static void barrier_init(emu_barrier *b, int count) {
    pthread_mutex_init(&b->mutex, NULL);
    pthread_cond_init(&b->cond, NULL);
    b->count = count;
    b->waiting = 0;
    b->generation = 0;
}

static void barrier_destroy(emu_barrier *b) {
    pthread_mutex_destroy(&b->mutex);
    pthread_cond_destroy(&b->cond);
}

static void barrier_wait(emu_barrier *b) {
    pthread_mutex_lock(&b->mutex);
    int generation = b->generation;
    if (++b->waiting == b->count) {
        b->waiting = 0;
        b->generation++;
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&b->mutex);
        return;
    }
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += TIMEOUT_SECONDS;
    while (generation == b->generation && !emu_failed) {
        if (pthread_cond_timedwait(&b->cond, &b->mutex, &deadline) == ETIMEDOUT) {
            emu_failed = 1;
            pthread_cond_broadcast(&b->cond);
        }
    }
    pthread_mutex_unlock(&b->mutex);
}

int32_t __tensorc_emu_tid(void) { return emu_tid; }
int32_t __tensorc_emu_ctaid(void) { return emu_ctaid; }
int32_t __tensorc_emu_ntid(void) { return emu_ntid; }
int32_t __tensorc_emu_nctaid(void) { return emu_nctaid; }
void __tensorc_emu_barrier(void) { barrier_wait(&block_barrier); }

int32_t __tensorc_emu_shfl_xor(int32_t value, int32_t lane_mask) {
    int warp = emu_tid / 32, lane = emu_tid % 32;
    exchange[emu_tid] = value;
    barrier_wait(&warp_barriers[warp]);
    int32_t other = exchange[warp * 32 + ((lane ^ lane_mask) & 31)];
    barrier_wait(&warp_barriers[warp]);
    return other;
}

typedef struct {
    wrapper_fn kernel;
    const uint64_t *params;
    int32_t tid;
} thread_task;

static void *run_thread(void *argument) {
    thread_task *task = argument;
    emu_tid = task->tid;
    for (int32_t block = 0; block < emu_nctaid; block++) {
        emu_ctaid = block;
        if (!emu_failed) task->kernel(task->params);
        barrier_wait(&block_barrier); /* shared memory is reused by the next block */
    }
    return NULL;
}

/* 0: done; -1: a bad launch shape; -2: a barrier or shuffle timed out (a deadlock). */
int __tensorc_emu_launch(wrapper_fn kernel, const uint64_t *params, int32_t grid,
                       int32_t block) {
    if (grid <= 0 || block <= 0 || block > 1024 || block % 32 != 0) return -1;
    emu_ntid = block;
    emu_nctaid = grid;
    emu_failed = 0;
    barrier_init(&block_barrier, block);
    for (int w = 0; w < block / 32; w++) barrier_init(&warp_barriers[w], 32);
    pthread_t threads[1024];
    thread_task tasks[1024];
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setstacksize(&attributes, 1 << 20);
    for (int32_t t = 0; t < block; t++) {
        tasks[t].kernel = kernel;
        tasks[t].params = params;
        tasks[t].tid = t;
        pthread_create(&threads[t], &attributes, run_thread, &tasks[t]);
    }
    for (int32_t t = 0; t < block; t++) pthread_join(threads[t], NULL);
    pthread_attr_destroy(&attributes);
    barrier_destroy(&block_barrier);
    for (int w = 0; w < block / 32; w++) barrier_destroy(&warp_barriers[w]);
    return emu_failed ? -2 : 0;
}
""".replace("TIMEOUT_SECONDS", str(BARRIER_TIMEOUT_SECONDS))


class HostTarget(GpuTarget):
    """Kernels for the CPU emulator (see the module documentation)."""

    def special(self, builder: ir.IRBuilder, register: str) -> ir.Value:
        function = _declare(builder.module, f"__tensorc_emu_{register}", I32, [])
        return builder.call(function, [], name=register)

    def barrier(self, builder: ir.IRBuilder) -> None:
        builder.call(_declare(builder.module, "__tensorc_emu_barrier", VOID, []), [])

    def shuffle_xor(self, builder: ir.IRBuilder, value: ir.Value, lane_mask: int) -> ir.Value:
        function = _declare(builder.module, "__tensorc_emu_shfl_xor", I32, [I32, I32])
        return builder.call(function, [value, I32(lane_mask)])

    def shared_array(
        self, module: ir.Module, name: str, element: ir.Type, count: int
    ) -> ir.GlobalVariable:
        array_type = ir.ArrayType(element, count)
        variable = ir.GlobalVariable(module, array_type, name)
        variable.linkage = "internal"
        variable.align = 16
        variable.initializer = ir.Constant(array_type, None)
        variable.type = PTR
        return variable

    def shared_pointer(self, builder: ir.IRBuilder, array: ir.GlobalVariable) -> ir.Value:
        return array

    def finish_kernel(self, function: ir.Function, max_threads: int) -> None:
        """Add `<name>.emu(const uint64_t *params)`, which unpacks the parameters."""
        module = function.module
        wrapper = ir.Function(module, ir.FunctionType(VOID, [PTR]),
                              function.name + WRAPPER_SUFFIX)
        builder = ir.IRBuilder(wrapper.append_basic_block("entry"))
        arguments = []
        for index, argument in enumerate(function.args):
            slot = builder.gep(wrapper.args[0], [I64(index)], source_etype=I64)
            raw = builder.load(slot, typ=I64)
            arguments.append(builder.inttoptr(raw, PTR) if argument.type == PTR else raw)
        builder.call(function, arguments)
        builder.ret_void()


def _declare(module: ir.Module, name: str, result: ir.Type, params: list[ir.Type]) -> ir.Function:
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    return ir.Function(module, ir.FunctionType(result, params), name)


def build_emulation_library(module: Module, output: str | os.PathLike[str]) -> Path:
    """The emulated kernels of a prepared module (`prepare_for_lowering` done), linked with
    the emulator's runtime into the shared object `output`."""
    llvm_module, _ = lower_module(module, HostTarget())
    target = host_target()
    manifest = {"format": "tensorc-emulator"}
    with tempfile.TemporaryDirectory(prefix="tensorc-emu-") as workdir:
        source = Path(workdir) / "emulator.c"
        source.write_text(_RUNTIME_C)
        return build_shared_object([str(llvm_module)], manifest, output, [source],
                                   target=target, opt_level=2)


# ----- the device -----------------------------------------------------------------------------


class EmulatedArray:
    """A "device" array of the emulator: host memory behind `__cuda_array_interface__`."""

    def __init__(self, shape: Sequence[int], dtype: Any) -> None:
        self._array = np.zeros(tuple(shape), dtype=np.dtype(dtype))

    @staticmethod
    def from_host(array: np.ndarray) -> EmulatedArray:
        result = EmulatedArray(array.shape, array.dtype)
        result._array[...] = array
        return result

    @property
    def shape(self) -> tuple[int, ...]:
        return self._array.shape

    @property
    def dtype(self) -> np.dtype:
        return self._array.dtype

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        return {
            "shape": self._array.shape,
            "typestr": self._array.dtype.str,
            "data": (self._array.ctypes.data if self._array.size else 0, False),
            "strides": None,
            "version": 3,
        }

    def get(self) -> np.ndarray:
        """A host copy (like pycuda's `GPUArray.get`)."""
        return self._array.copy()


class _Allocation:
    def __init__(self, nbytes: int) -> None:
        self.memory = np.zeros(max(nbytes, 1), dtype=np.uint8)

    def __int__(self) -> int:
        return int(self.memory.ctypes.data)


class EmulatedDevice:
    """The device interface of `tensorc_runtime.cuda`, run by the emulator."""

    name = "tensorc CUDA emulator (CPU)"

    def __init__(self, library: str | os.PathLike[str], compute_capability=(9, 0)) -> None:
        self.library = ctypes.CDLL(os.fspath(library))
        self._launch = self.library["__tensorc_emu_launch"]
        self._launch.restype = ctypes.c_int
        self._launch.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32,
                                 ctypes.c_int32]
        self.compute_capability = compute_capability
        self.launches: list[tuple[str, int, int]] = []  # (kernel, grid, block), for tests
        self.grid_limit: int | None = None  # run smaller grids (grid-stride loops must cope)
        self.lock = threading.Lock()

    def activate(self):
        from contextlib import nullcontext

        return nullcontext()

    def load_module(self, image: bytes, kind: str) -> Any:
        return self.library  # the emulated kernels were compiled from the same IR

    def kernel(self, module: Any, name: str, param_format: str) -> Any:
        try:
            function = self.library[name + WRAPPER_SUFFIX]
        except AttributeError:
            raise KeyError(f"the emulator has no kernel {name!r}") from None
        return name, ctypes.cast(function, ctypes.c_void_p).value

    def allocate(self, nbytes: int) -> _Allocation:
        return _Allocation(nbytes)

    def upload(self, pointer: int, array: np.ndarray) -> None:
        ctypes.memmove(pointer, array.ctypes.data, array.nbytes)

    def download(self, array: np.ndarray, pointer: int) -> None:
        ctypes.memmove(array.ctypes.data, pointer, array.nbytes)

    def copy(self, destination: int, source: int, nbytes: int) -> None:
        ctypes.memmove(destination, source, nbytes)

    def fill(self, pointer: int, byte: int, nbytes: int) -> None:
        ctypes.memset(pointer, byte, nbytes)

    def launch(self, kernel: Any, grid: int, block: int, params: Sequence[int]) -> None:
        name, address = kernel
        if self.grid_limit is not None:
            grid = min(grid, self.grid_limit)
        values = (ctypes.c_uint64 * max(len(params), 1))(*[p & (2**64 - 1) for p in params])
        self.launches.append((name, grid, block))
        status = self._launch(address, values, grid, block)
        if status == -1:
            raise RuntimeError(f"{name}: invalid launch shape grid={grid} block={block}")
        if status:
            raise RuntimeError(f"{name}: a barrier or warp shuffle deadlocked (a kernel bug)")

    def synchronize(self) -> None:
        return None

    def empty(self, shape: Sequence[int], dtype: Any) -> tuple[EmulatedArray, int]:
        array = EmulatedArray(shape, dtype)
        return array, array.__cuda_array_interface__["data"][0]


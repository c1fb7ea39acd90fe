"""tensorc against NumPy, PyTorch, JAX and PyTensor on the CPU workloads of the CPU-backend
issue, in one run.

    python benchmarks/run.py [--target cpu] [--repeat 30] [--only gelu,softmax] [--check]

Prints, per workload, the median time per call of each engine (sampled in interleaved
rounds, so the machine's drift weighs on every engine alike), a throughput (GB/s for memory
bound work, GFLOP/s for matmul), and tensorc's speed ratio to each peer (> 1 means tensorc is
faster). Every peer but NumPy is optional and runs when installed (`install_peers.sh`):
PyTorch (`pip install torch==2.13.0`, CPU build), JAX and PyTensor on every workload
(`jax_peers.py`, `pytensor_peers.py`), and numba for layer norm and `relu(x*a+b)`, where the
issue names it the best peer (`numba_peers.py`). Before any timing every engine's results are
checked against NumPy's; `--check` does only that. Targets from the issue are printed next to
tensorc's figure, with the compile time of each workload: cold (an empty artifact cache; the
per-machine support objects -- thread pool, GEMM -- are built once per run by the first
workload that needs them) and cached (a cache hit: load only).

Row workloads (softmax, layer norm) also time a `floor` engine, sampled in the same rounds: a
tensorc kernel that only reads `x` and writes a result of its size (`x * 2`). No kernel with
that traffic can beat it by much, so its ratio says how far from the machine's memory floor
tensorc is in this run.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np

import tensorc

try:  # optional peer
    import torch
except ImportError:  # pragma: no cover - depends on the machine
    torch = None


def _optional_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:  # pragma: no cover - depends on the machine
        return None


# Optional peers, each a module of functions named after a workload's `kind` that take its
# NumPy inputs and return the runner to time (compiled, inputs converted): numba where the
# issue names it the best peer, JAX and PyTensor on every workload.
PEER_MODULES = {
    engine: _optional_module(f"{engine}_peers") for engine in ("numba", "jax", "pytensor")
}
Runner = Callable[[], object]


@dataclass
class Workload:
    name: str
    source: str
    function: str
    kind: str  # the name of its function in the optional peer modules
    make_inputs: Callable[[np.random.Generator], list]
    numpy_impl: Callable[..., object]
    torch_impl: Callable[..., object] | None
    bytes_moved: Callable[[list], float] | None = None
    flops: Callable[[list], float] | None = None
    target: str = ""
    floor: bool = False  # also time FLOOR_SOURCE on the first input (module doc)


def _softmax_np(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _layer_norm_np(x, g, b):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5) * g + b


def _gelu_tanh_np(x):
    return 0.5 * x * (1 + np.tanh(np.float32(0.7978845608) * (x + np.float32(0.044715) * x**3)))


MLP_STEP = """
def train_step(x: f32[N, 784], y: i32[N], w1: f32[784, 512], b1: f32[512],
               w2: f32[512, 10], b2: f32[10], lr: f32
               ) -> (f32[784, 512], f32[512], f32[512, 10], f32[10], f32) {
    h = relu(x @ w1 + b1)
    loss = mean(cross_entropy(h @ w2 + b2, y))
    g1, gb1, g2, gb2 = grad(loss, [w1, b1, w2, b2])
    return w1 - lr * g1, b1 - lr * gb1, w2 - lr * g2, b2 - lr * gb2, loss
}
"""


def _mlp_inputs(rng):
    return [
        rng.standard_normal((256, 784), dtype=np.float32),
        rng.integers(0, 10, 256).astype(np.int32),
        (rng.standard_normal((784, 512), dtype=np.float32) * 0.05),
        np.zeros(512, np.float32),
        (rng.standard_normal((512, 10), dtype=np.float32) * 0.05),
        np.zeros(10, np.float32),
        np.float32(0.1),
    ]


def _mlp_numpy(x, y, w1, b1, w2, b2, lr):
    pre = x @ w1 + b1
    h = np.maximum(pre, 0)
    z = h @ w2 + b2
    p = _softmax_np(z)
    n = x.shape[0]
    loss = -np.log(p[np.arange(n), y]).mean()
    dz = p
    dz[np.arange(n), y] -= 1
    dz /= n
    g2, gb2 = h.T @ dz, dz.sum(0)
    dh = (dz @ w2.T) * (pre > 0)
    g1, gb1 = x.T @ dh, dh.sum(0)
    return w1 - lr * g1, b1 - lr * gb1, w2 - lr * g2, b2 - lr * gb2, loss


def _mlp_torch(x, y, w1, b1, w2, b2, lr):
    params = [w1.requires_grad_(), b1.requires_grad_(), w2.requires_grad_(), b2.requires_grad_()]
    h = torch.relu(x @ w1 + b1)
    loss = torch.nn.functional.cross_entropy(h @ w2 + b2, y.long())
    grads = torch.autograd.grad(loss, params)
    with torch.no_grad():
        return [p - lr * g for p, g in zip(params, grads)] + [loss.detach()]


def workloads() -> list[Workload]:
    t = torch
    return [
        Workload(
            "gelu_tanh 16M",
            "def f(x: f32[N]) -> f32[N] { return gelu(x, approximate=true) }",
            "f",
            "gelu_tanh",
            lambda r: [r.standard_normal(16 * 2**20, dtype=np.float32)],
            _gelu_tanh_np,
            (lambda x: t.nn.functional.gelu(x, approximate="tanh")) if t else None,
            bytes_moved=lambda a: 2 * a[0].nbytes,
            target="<= 5 ms",
        ),
        Workload(
            "relu(x*a+b) 4096^2",
            "def f(x: f32[N, M], a: f32[M], b: f32[M]) -> f32[N, M] { return relu(x * a + b) }",
            "f",
            "relu_affine",
            lambda r: [
                r.standard_normal((4096, 4096), dtype=np.float32),
                r.standard_normal(4096, dtype=np.float32),
                r.standard_normal(4096, dtype=np.float32),
            ],
            lambda x, a, b: np.maximum(x * a + b, 0),
            (lambda x, a, b: t.relu(x * a + b)) if t else None,
            bytes_moved=lambda a: 2 * a[0].nbytes,
            target="<= 4 ms",
        ),
        Workload(
            "softmax 4096x1024",
            "def f(x: f32[N, M]) -> f32[N, M] { return softmax(x, axis=-1) }",
            "f",
            "softmax",
            lambda r: [r.standard_normal((4096, 1024), dtype=np.float32)],
            _softmax_np,
            (lambda x: t.softmax(x, dim=-1)) if t else None,
            bytes_moved=lambda a: 2 * a[0].nbytes,
            target="<= 1.0 ms",
            floor=True,
        ),
        Workload(
            "layer_norm 4096x1024",
            "def f(x: f32[N, M], g: f32[M], b: f32[M]) -> f32[N, M] { return layer_norm(x, g, b) }",
            "f",
            "layer_norm",
            lambda r: [
                r.standard_normal((4096, 1024), dtype=np.float32),
                r.standard_normal(1024, dtype=np.float32),
                r.standard_normal(1024, dtype=np.float32),
            ],
            _layer_norm_np,
            (lambda x, g, b: t.nn.functional.layer_norm(x, (x.shape[-1],), g, b)) if t else None,
            bytes_moved=lambda a: 2 * a[0].nbytes,
            target="<= 0.6 ms",
            floor=True,
        ),
        Workload(
            "matmul 1024^3",
            "def f(a: f32[M, K], b: f32[K, N]) -> f32[M, N] { return a @ b }",
            "f",
            "matmul",
            lambda r: [
                r.standard_normal((1024, 1024), dtype=np.float32),
                r.standard_normal((1024, 1024), dtype=np.float32),
            ],
            np.matmul,
            (lambda a, b: a @ b) if t else None,
            flops=lambda a: 2.0 * a[0].shape[0] * a[0].shape[1] * a[1].shape[1],
            target=">= 0.95x numpy GFLOP/s",
        ),
        Workload(
            "matmul 256x784x512",
            "def f(a: f32[M, K], b: f32[K, N]) -> f32[M, N] { return a @ b }",
            "f",
            "matmul",
            lambda r: [
                r.standard_normal((256, 784), dtype=np.float32),
                r.standard_normal((784, 512), dtype=np.float32),
            ],
            np.matmul,
            (lambda a, b: a @ b) if t else None,
            flops=lambda a: 2.0 * a[0].shape[0] * a[0].shape[1] * a[1].shape[1],
            target=">= 0.95x numpy GFLOP/s",
        ),
        Workload(
            "MLP train step b=256",
            MLP_STEP,
            "train_step",
            "mlp_train_step",
            _mlp_inputs,
            _mlp_numpy,
            _mlp_torch if t else None,
            target="<= fastest peer",
        ),
        Workload(
            "x+1 on 8 elements",
            "def f(x: f32[N]) -> f32[N] { return x + 1.0 }",
            "f",
            "add_one",
            lambda r: [r.standard_normal(8, dtype=np.float32)],
            lambda x: x + np.float32(1),
            (lambda x: x + 1) if t else None,
            target="<= 1.5 us",
        ),
    ]


FLOOR_SOURCE = "def f(x: f32[N, M]) -> f32[N, M] { return x * 2.0 }"
SETTLE_S = 0.25


def median_times(engines: dict[str, Runner], repeat: int, rounds: int = 5) -> dict[str, float]:
    """Median seconds per call of each engine, sampled in `rounds` interleaved rounds (every
    engine takes its share of samples in each round), so that the machine's drift during a
    workload weighs on all engines alike and the ratios stay fair. Calls under a millisecond
    are timed in batches of about a millisecond; each engine gets about 3 s, at least one
    sample per round. Each engine's turn starts with SETTLE_S of untimed calls: the engine
    before it leaves threads spinning (PyTorch's OpenMP workers after a parallel op, which
    halves the speed of the next ~10 calls of a 2-thread kernel on two cores; OpenBLAS's
    workers for up to ~0.1 s, which with a shorter settle made a 256x784x512 matmul measure
    0.58x NumPy) and caches holding its own data."""
    inner: dict[str, int] = {}
    for name, function in engines.items():
        function()  # warm up (first-touch, caches, lazy thread pools)
        started = time.perf_counter()
        function()
        single = time.perf_counter() - started
        inner[name] = max(1, int(1e-3 / max(single, 1e-7))) if single < 1e-3 else 1
    per_round = max(1, repeat // rounds)
    budget = 3.0 / rounds
    samples: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(rounds):
        for name, function in engines.items():
            settled = time.perf_counter() + SETTLE_S
            function()
            while time.perf_counter() < settled:
                function()
            deadline = time.perf_counter() + budget
            for _ in range(per_round):
                started = time.perf_counter()
                for _ in range(inner[name]):
                    function()
                samples[name].append((time.perf_counter() - started) / inner[name])
                if time.perf_counter() > deadline:
                    break
    return {name: statistics.median(values) for name, values in samples.items()}


FRESH_PROCESS_PROBE = """
import sys, time
started = time.perf_counter()
import tensorc
imported = time.perf_counter()
tensorc.compile(sys.stdin.read(), target=sys.argv[1])
print(imported - started, time.perf_counter() - imported)
"""


def fresh_process_compile(source: str, target: str, repeat: int = 3) -> tuple[float, float]:
    """(import seconds, compile seconds) of a cold compile of `source` in a new Python process,
    the best of `repeat`: an empty artifact cache, but the per-machine support objects (thread
    pool, GEMM) already built, as after any first compile on a machine."""
    with tempfile.TemporaryDirectory(prefix="tensorc-bench-fresh-") as cache:
        environment = {**os.environ, "TENSORC_CACHE_DIR": cache}
        best = (math.inf, math.inf)
        for attempt in range(repeat + 1):
            shutil.rmtree(os.path.join(cache, "artifacts"), ignore_errors=True)
            finished = subprocess.run(
                [sys.executable, "-c", FRESH_PROCESS_PROBE, target],
                input=source, capture_output=True, text=True, env=environment, check=True,
            )
            imports, compiling = (float(v) for v in finished.stdout.split())
            if attempt > 0 and imports + compiling < sum(best):  # attempt 0 builds the support
                best = (imports, compiling)
        return best


def build_engines(
    workload: Workload,
    inputs: list,
    function: Callable[..., object],
    floor: Callable[..., object] | None,
) -> tuple[dict[str, Runner], contextlib.AbstractContextManager]:
    """The runners to time for `workload` (tensorc's `function`, NumPy, and every installed
    peer), and the context to time them in (PyTorch's inference mode, except for the train
    step, which needs autograd)."""
    engines: dict[str, Runner] = {
        "tensorc": lambda: function(*inputs),
        "numpy": lambda: workload.numpy_impl(*inputs),
    }
    inference = contextlib.nullcontext()
    if workload.torch_impl is not None:
        torch_inputs = [torch.from_numpy(np.array(x)) for x in inputs]
        engines["torch"] = lambda: workload.torch_impl(*torch_inputs)
        inference = torch.inference_mode(mode=workload.function != "train_step")
    for engine, peers in PEER_MODULES.items():
        make_runner = getattr(peers, workload.kind, None) if peers is not None else None
        if make_runner is not None:
            engines[engine] = make_runner(inputs)
    if workload.floor:
        engines["floor"] = lambda: floor(inputs[0])
    return engines, inference


def disagreeing(engines: dict[str, Runner]) -> list[str]:
    """The engines whose results differ from NumPy's (f32 tolerances: relative 1e-3, absolute
    1e-3 of the largest reference value), so that no row times a different computation."""
    reference = _as_arrays(engines["numpy"]())
    differing = []
    for engine, run in engines.items():
        if engine in ("numpy", "floor"):
            continue
        results = _as_arrays(run())
        if len(results) != len(reference) or not all(
            _close(result, expected) for result, expected in zip(results, reference)
        ):
            differing.append(engine)
    return differing


def _as_arrays(results: object) -> list[np.ndarray]:
    values = results if isinstance(results, (list, tuple)) else [results]
    return [np.asarray(value.detach() if hasattr(value, "detach") else value) for value in values]


def _close(result: np.ndarray, expected: np.ndarray) -> bool:
    if result.shape != expected.shape:
        return False
    scale = float(np.max(np.abs(expected), initial=1.0))
    return bool(np.allclose(result, expected, rtol=1e-3, atol=1e-3 * scale))


def _version(engine: str) -> str:
    from importlib.metadata import version

    return version(engine)


def _format_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.2f} us"
    return f"{seconds * 1e3:8.3f} ms"


def _throughput(workload: Workload, inputs: list, seconds: float) -> str:
    if workload.flops:
        return f"{workload.flops(inputs) / seconds / 1e9:7.1f} GFLOP/s"
    if workload.bytes_moved:
        return f"{workload.bytes_moved(inputs) / seconds / 1e9:7.1f} GB/s"
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="cpu")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--only", default="", help="comma-separated name prefixes")
    parser.add_argument(
        "--check", action="store_true",
        help="only check that every engine's results agree with NumPy's; time nothing",
    )
    args = parser.parse_args()
    wanted = [w for w in args.only.split(",") if w]
    rng = np.random.default_rng(0)
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} cores={os.cpu_count()}; "
        f"numpy {np.__version__}; torch {torch.__version__ if torch else 'absent'}; "
        f"tensorc {tensorc.__version__} target={args.target}"
    )
    peers = [f"{engine} {_version(engine)}" for engine, m in PEER_MODULES.items() if m is not None]
    print(f"optional peers: {', '.join(peers) or 'none installed'}")
    header = f"{'workload':24} {'engine':8} {'time':>11} {'throughput':>16} {'tensorc x':>10}"
    if not args.check:
        print(header)
        print("-" * len(header))
    floor = None  # the FLOOR_SOURCE function, once a workload asks for it
    any_differing = False
    for workload in workloads():
        if wanted and not any(workload.name.startswith(w) for w in wanted):
            continue
        inputs = workload.make_inputs(rng)
        with tempfile.TemporaryDirectory(prefix="tensorc-bench-") as cache:
            os.environ["TENSORC_CACHE_DIR"] = cache  # a cold compile, then a cache hit
            started = time.perf_counter()
            module = tensorc.compile(workload.source, target=args.target)
            compile_seconds = time.perf_counter() - started
            started = time.perf_counter()
            tensorc.compile(workload.source, target=args.target)
            cached_seconds = time.perf_counter() - started
            if workload.floor and floor is None:  # built once, in a cache that is cleaned up
                floor = tensorc.compile(FLOOR_SOURCE, target=args.target).f
        function = getattr(module, workload.function)
        engines, inference = build_engines(workload, inputs, function, floor)
        with inference:
            differing = disagreeing(engines)
            any_differing = any_differing or bool(differing)
            if args.check:
                verdict = f"differ: {', '.join(differing)}" if differing else "agree"
                checked = [engine for engine in engines if engine != "floor"]
                print(f"{workload.name:24} {', '.join(checked)}: {verdict}")
                continue
            times = median_times(engines, args.repeat)
        ours = times["tensorc"]
        rows = list(times.items())
        for engine, seconds in rows:
            ratio = "" if engine == "tensorc" else f"{seconds / ours:9.2f}x"
            if engine in differing:
                ratio += "  RESULT DIFFERS FROM NUMPY'S"
            note = (
                f"  target {workload.target}; compile {compile_seconds:.2f} s, "
                f"cached {cached_seconds * 1e3:.0f} ms"
                if engine == "tensorc"
                else ""
            )
            print(
                f"{workload.name:24} {engine:8} {_format_time(seconds):>11} "
                f"{_throughput(workload, inputs, seconds):>16} {ratio:>10}{note}"
            )
        if workload.function == "train_step":
            imports, compiling = fresh_process_compile(workload.source, args.target)
            print(
                f"{workload.name:24} cold compile in a fresh process: import tensorc "
                f"{imports:.2f} s + compile {compiling:.2f} s = {imports + compiling:.2f} s"
                f" (target <= 0.5 s)"
            )
    if any_differing:
        sys.exit("some engines computed results that differ from NumPy's (marked above)")


if __name__ == "__main__":
    main()

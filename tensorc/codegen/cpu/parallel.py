"""Parallel code generation: an artifact's LLVM module split into parts, each optimised and
compiled to an object by its own process.

LLVM's optimisation and instruction selection are most of a cold compile (0.45 s of 0.77 s
for the MLP train step), and llvmlite runs every LLVM call behind one lock, so threads cannot
share that work. Processes can: `compile_parts` forks one worker per part but the first
(which the calling process compiles itself), each worker sends its object back through a
pipe, and the objects are linked into the one shared library as before.

Splitting (`split_module`). The lowered module has entry points (`tensorc_F`), which call
internal helpers directly (the error reporter), and outlined kernels, which the entry points
only pass by address (`tensorc_parallel_for(@K.task, ...)`, a GEMM's `@K.epilogue`). So:

- part 0 holds the entry points and, transitively, the internal functions they call;
- every address-taken internal function is the root of a *unit*: it and, transitively, the
  internal functions it calls (a chain task and its loop nests), placed whole in one part;
- a unit's root becomes `hidden` (external within the shared object only) so that part 0,
  which gets a declaration of it, links against it; internal helpers a unit calls and the
  constants it reads are copied into its part (they are internal, so copies do not clash);
- units go to the part with the least estimated LLVM time so far, largest first (the
  estimate counts loops, where the vectoriser spends its time, and characters of IR).

Splitting never changes the code inside a function: kernels were only reachable through
pointers, so nothing that could have been inlined is separated.

`--emit=llvm|asm|obj` still compile the module whole (one IR text, the same every time); only
the shared library is built in parts. `TENSORC_BUILD_JOBS` caps the processes (default: the
CPUs this process may run on; 1 compiles in the calling process). A worker that fails or
dies is replaced by compiling its part in the calling process, so errors read as in a
serial build.
"""

from __future__ import annotations

import os
import re
import select
import signal
import struct
import warnings
from collections.abc import Callable, Sequence

import llvmlite.binding as llvm
import llvmlite.ir as ir

from tensorc.codegen.cpu.irutil import LOOP_HEADER

ENVIRONMENT_VARIABLE = "TENSORC_BUILD_JOBS"
# LLVM's time on a function, estimated: ~11 ms per loop (the vectoriser's work) plus ~0.17 ms
# per 1,000 characters of IR, measured here on the MLP, softmax and layer norm modules under
# LLVM's O3. Under O2 (tensorc's -O1/-O2) the MLP module takes 0.69 of that time, so both are
# scaled by 0.69: the balance between parts depends on their ratio alone, and only the
# MIN_PART_MS threshold on their scale.
MS_PER_LOOP = 11.0 * 0.69
MS_PER_CHARACTER = 0.00017 * 0.69
MIN_PART_MS = 20.0  # a part estimated below this is not worth a process
_LOOP_HEADER = re.compile(rf"^[-\w$.]*\.{LOOP_HEADER}(?:\.\d+)?:", re.M)
WORKER_TIMEOUT_S = 600.0

_CALLEE = re.compile(r'\bcall\b[^@\n]*@("(?:[^"\\]|\\.)*"|[-\w$.]+)\(')
_REFERENCE = re.compile(r'@("(?:[^"\\]|\\.)*"|[-\w$.]+)')


def build_jobs() -> int:
    """How many processes may compile parts (`TENSORC_BUILD_JOBS`, else the usable CPUs)."""
    setting = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if setting:
        try:
            return max(1, int(setting))
        except ValueError:
            return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _name(token: str) -> str:
    return token[1:-1] if token.startswith('"') else token


def _hidden(definition: str) -> str:
    return definition.replace("define internal ", "define hidden ", 1)


def _declaration_text(function: ir.Function) -> str:
    scratch = ir.Module(name="declarations")
    return str(ir.Function(scratch, function.function_type, function.name))


class _Graph:
    """Who calls and who mentions whom, among the module's global values."""

    def __init__(self, module: ir.Module) -> None:
        self.module = module
        self.values: dict[str, ir.GlobalValue] = dict(module.globals)
        # unnamed metadata (branch weights) is numbered module-wide: every part gets it all
        self.metadata = list(module._get_metadata_lines())
        self.texts: dict[str, str] = {}
        self.cost: dict[str, float] = {}  # estimated LLVM milliseconds per definition
        self.calls: dict[str, set[str]] = {}
        self.mentions: dict[str, set[str]] = {}
        for name, value in self.values.items():
            if not self.is_definition(name):
                continue
            text = str(value)  # the costly part of splitting: llvmlite prints every function
            body = text.split("\n", 1)[1] if isinstance(value, ir.Function) else text
            self.texts[name] = text
            self.cost[name] = (
                MS_PER_LOOP * len(_LOOP_HEADER.findall(text)) + MS_PER_CHARACTER * len(text)
            )
            self.calls[name] = {_name(t) for t in _CALLEE.findall(body)} & self.values.keys()
            self.mentions[name] = {_name(t) for t in _REFERENCE.findall(body)} & self.values.keys()
            self.mentions[name].discard(name)

    def is_definition(self, name: str) -> bool:
        value = self.values[name]
        if isinstance(value, ir.Function):
            return not value.is_declaration
        return isinstance(value, ir.GlobalVariable) and value.initializer is not None

    def is_internal_function(self, name: str) -> bool:
        value = self.values[name]
        return (
            isinstance(value, ir.Function)
            and self.is_definition(name)
            and value.linkage in ("internal", "private")
        )

    def call_closure(self, roots: Sequence[str]) -> list[str]:
        """`roots` and the internal functions they call, transitively, in discovery order."""
        seen: dict[str, None] = {}
        stack = list(reversed(roots))
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen[name] = None
            stack.extend(
                sorted(c for c in self.calls.get(name, ()) if self.is_internal_function(c))
            )
        return list(seen)


def split_module(module: ir.Module, parts: int) -> list[str]:
    """At most `parts` LLVM IR texts which, compiled and linked together, define what `module`
    defines (module doc). One text when there is nothing worth splitting."""
    if parts < 2:
        return [str(module)]
    graph = _Graph(module)
    functions = [n for n, v in graph.values.items() if isinstance(v, ir.Function)]
    entries = [n for n in functions if graph.is_definition(n) and not graph.is_internal_function(n)]
    home = graph.call_closure(entries)
    home_set = set(home)
    roots: list[str] = []
    for name in home:
        for mentioned in sorted(graph.mentions.get(name, ())):
            if (
                graph.is_internal_function(mentioned)
                and mentioned not in home_set
                and mentioned not in roots
            ):
                roots.append(mentioned)
    units: list[list[str]] = []
    for root in list(roots):
        unit = graph.call_closure([root])
        if _movable(graph, unit):
            units.append(unit)
        else:
            roots.remove(root)
            home.extend(n for n in unit if n not in home)
    if not units:
        return [str(module)]
    weights = [sum(graph.cost[n] for n in unit) for unit in units]
    loads = [sum(graph.cost[n] for n in home)] + [0.0] * (parts - 1)
    placement: list[list[int]] = [[] for _ in range(parts)]
    for index in sorted(range(len(units)), key=lambda i: (-weights[i], i)):
        part = min(range(parts), key=lambda p: (loads[p], p))
        loads[part] += weights[index]
        placement[part].append(index)
    for part in range(1, parts):
        if 0 < loads[part] < MIN_PART_MS:  # too small to pay for a process
            placement[0].extend(placement[part])
            placement[part] = []
    groups = [list(home) if part == 0 else [] for part in range(parts)]
    for part, indices in enumerate(placement):
        for index in sorted(indices):
            groups[part].extend(n for n in units[index] if n not in groups[part])
    groups = [group for group in groups if group]
    if len(groups) < 2:
        return [str(module)]
    moved = {name for group in groups[1:] for name in group if name in roots}
    if any(sum(name in group for group in groups) > 1 for name in moved):
        return [str(module)]  # a moved root also copied elsewhere would be defined twice
    if not all(_resolvable(graph, group, moved) for group in groups):
        return [str(module)]
    return [_part_text(graph, group, moved) for group in groups]


def _resolvable(graph: _Graph, group: Sequence[str], moved: set[str]) -> bool:
    """Whether every internal function `group` mentions but lacks is a moved root (defined,
    hidden, in another part)."""
    members = set(group)
    return all(
        mentioned in members or mentioned in moved or not graph.is_internal_function(mentioned)
        for name in group
        for mentioned in graph.mentions.get(name, ())
    )


def _movable(graph: _Graph, unit: Sequence[str]) -> bool:
    """Whether a unit may live in another part: it reads no mutable internal global (copies
    of constants are fine, copies of variables are not)."""
    return not any(
        isinstance(value, ir.GlobalVariable)
        and value.linkage in ("internal", "private")
        and not value.global_constant
        for name in unit
        for value in (graph.values[mentioned] for mentioned in graph.mentions.get(name, ()))
    )


def _part_text(graph: _Graph, members: Sequence[str], moved: set[str]) -> str:
    """One part: its members' definitions (moved roots `hidden`), copies of the internal
    globals they mention, and declarations of everything else they mention."""
    member_set = set(members)
    lines = [f'target triple = "{graph.module.triple}"', ""]
    needed: dict[str, None] = {}
    for name in members:
        for mentioned in sorted(graph.mentions.get(name, ())):
            if mentioned not in member_set:
                needed[mentioned] = None
    for name in needed:
        value = graph.values[name]
        if isinstance(value, ir.GlobalVariable):
            lines.append(graph.texts.get(name) or str(value))
        elif isinstance(value, ir.Function):
            lines.append(str(value) if value.is_declaration else _declaration_text(value))
    for name in members:
        text = graph.texts[name]
        lines.append(_hidden(text) if name in moved else text)
    lines.extend(graph.metadata)
    return "\n".join(lines) + "\n"


# ----- the workers ------------------------------------------------------------------------

CompilePart = Callable[[str], bytes]


def compile_parts(texts: Sequence[str], compile_part: CompilePart, jobs: int) -> list[bytes]:
    """`compile_part(text)` for every text: all but the first in forked workers (at most
    `jobs` processes in all), the first here; a worker that fails is redone here."""
    if jobs < 2 or len(texts) < 2 or not hasattr(os, "fork"):
        return [compile_part(text) for text in texts]
    workers: list[tuple[int, int, int]] = []  # (index, pid, read end)
    pending = list(range(1, len(texts)))
    results: dict[int, bytes] = {}
    lock = llvm.ffi.lib._lock  # no other thread may be inside LLVM while we fork
    while pending and len(workers) < jobs - 1:
        index = pending.pop(0)
        read_end, write_end = os.pipe()
        with lock, warnings.catch_warnings():
            _quiet_fork_warnings()
            pid = os.fork()
        if pid == 0:  # the worker
            os.close(read_end)
            _worker(texts[index], compile_part, write_end)
        os.close(write_end)
        workers.append((index, pid, read_end))
    try:
        for index in [0, *pending]:
            results[index] = compile_part(texts[index])
    except BaseException:
        for _, pid, read_end in workers:  # no orphans when this process fails
            os.kill(pid, signal.SIGKILL)
            os.close(read_end)
            os.waitpid(pid, 0)
        raise
    for index, pid, read_end in workers:
        data = _collect(pid, read_end)
        results[index] = data if data is not None else compile_part(texts[index])
    return [results[index] for index in range(len(texts))]


def _quiet_fork_warnings() -> None:
    """Silence the warnings that fork() in a multi-threaded process may deadlock the child
    (JAX's at-fork hook, Python 3.12's DeprecationWarning): they are about a child that goes on
    running the parent's code. A worker only runs LLVM, which no other thread can be inside
    (llvmlite's lock is held across the fork; other LLVM copies, such as XLA's, are not called),
    writes to its pipe and leaves with `os._exit`."""
    for category in (RuntimeWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", message=r".*\bfork\(\)", category=category)


def _worker(text: str, compile_part: CompilePart, write_end: int) -> None:
    """Compile `text` and write its length-prefixed object to `write_end`; never returns."""
    code = 1
    try:
        data = compile_part(text)
        payload = struct.pack("<Q", len(data)) + data
        view = memoryview(payload)
        while view:
            written = os.write(write_end, view)
            view = view[written:]
        code = 0
    except BaseException:  # noqa: BLE001 - the parent compiles this part again and reports
        code = 1
    finally:
        os._exit(code)


def _collect(pid: int, read_end: int) -> bytes | None:
    """The object a worker sent, or None when it failed, died or took too long."""
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([read_end], [], [], WORKER_TIMEOUT_S)
            if not ready:
                os.kill(pid, signal.SIGKILL)
                return None
            chunk = os.read(read_end, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
    data = b"".join(chunks)
    if status != 0 or len(data) < 8:
        return None
    (size,) = struct.unpack("<Q", data[:8])
    return data[8:] if len(data) == 8 + size else None

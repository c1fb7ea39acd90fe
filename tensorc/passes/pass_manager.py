"""Passes, their registry, pipeline strings, and the pass manager with its instrumentation.

A pass is a frozen dataclass with a `name`; its fields are the options of the pipeline
string (`fusion{max-ops=32}` sets `max_ops=32`):

    @register_pass
    @dataclass(frozen=True)
    class Fusion(ModulePass):
        name = "fusion"
        max_ops: int = 64

        def run(self, module: Module) -> bool: ...

`run` returns whether it changed the module. The pass manager verifies after every pass that
did (or that does not say: `None`), and skips the verifier after one that left the module as
it was, as MLIR skips it after a pass that preserved every analysis.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, TextIO

from tensorc.ir.core import VerifyError
from tensorc.ir.dialects.func import Module
from tensorc.ir.printer import print_module
from tensorc.ir.verifier import verify_module


class PipelineError(ValueError):
    """A malformed pipeline string: unknown pass, unknown option, or a bad option value."""


class DumpError(RuntimeError):
    """`--dump-ir-dir` could not be created or written; the message names the path."""


class PassFailure(RuntimeError):
    """The IR failed verification after a pass; the message names the pass, the op, and holds
    the IR as it was left."""

    def __init__(self, pass_name: str, error: VerifyError, ir_text: str) -> None:
        where = f" at {error.op.loc}" if error.op is not None and error.op.loc else ""
        op_name = f" ({error.op.name})" if error.op is not None else ""
        super().__init__(
            f"verification failed after pass '{pass_name}'{where}{op_name}: {error}\n"
            f"IR after '{pass_name}':\n{ir_text}"
        )
        self.pass_name = pass_name
        self.error = error


@dataclass(frozen=True)
class ModulePass:
    name: ClassVar[str] = ""

    def run(self, module: Module) -> bool | None:
        """Transform `module` in place; return whether anything changed (see the module doc)."""
        raise NotImplementedError

    def pipeline_text(self) -> str:
        """This pass as it would be written in a pipeline string."""
        options = [
            f"{f.name.replace('_', '-')}={_format_option(getattr(self, f.name))}"
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default
        ]
        return self.name + ("{" + ",".join(options) + "}" if options else "")


def _format_option(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


PASS_REGISTRY: dict[str, type[ModulePass]] = {}


def register_pass(cls: type[ModulePass]) -> type[ModulePass]:
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    PASS_REGISTRY[cls.name] = cls
    return cls


def available_passes() -> list[str]:
    _load_builtin_passes()
    return sorted(PASS_REGISTRY)


def _load_builtin_passes() -> None:
    """Import every module of `tensorc.passes` once: each registers the passes it defines."""
    import importlib
    import pkgutil

    import tensorc.passes as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")


_PASS_ITEM = re.compile(r"\s*([A-Za-z][A-Za-z0-9_-]*)\s*(?:\{([^{}]*)\})?\s*")


def parse_pipeline(text: str) -> list[ModulePass]:
    """`inline,canonicalize,fusion{max-ops=32}` -> pass instances. Raises PipelineError."""
    _load_builtin_passes()
    passes: list[ModulePass] = []
    position = 0
    text = text.strip()
    if not text:
        return passes
    while position < len(text):
        match = _PASS_ITEM.match(text, position)
        if not match or match.end() == position:
            raise PipelineError(f"malformed pipeline at character {position + 1}: {text!r}")
        passes.append(_instantiate(match.group(1), match.group(2)))
        position = match.end()
        if position < len(text):
            if text[position] != ",":
                raise PipelineError(
                    f"expected ',' at character {position + 1} of pipeline {text!r}"
                )
            position += 1
    return passes


def _instantiate(name: str, options_text: str | None) -> ModulePass:
    cls = PASS_REGISTRY.get(name)
    if cls is None:
        raise PipelineError(
            f"unknown pass '{name}'; available passes: {', '.join(available_passes())}"
        )
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in (options_text or "").split(","))):
        key, sep, raw = item.partition("=")
        attr = key.strip().replace("-", "_")
        if attr not in fields:
            choices = ", ".join(f.replace("_", "-") for f in fields) or "none"
            raise PipelineError(f"pass '{name}' has no option '{key.strip()}'; options: {choices}")
        if not sep:
            raise PipelineError(f"option '{key.strip()}' of pass '{name}' needs a value")
        kwargs[attr] = _convert_option(name, key.strip(), raw.strip(), fields[attr])
    return cls(**kwargs)


def _convert_option(pass_name: str, key: str, raw: str, spec: dataclasses.Field) -> Any:
    kind = (
        spec.type
        if isinstance(spec.type, type)
        else {"int": int, "bool": bool, "float": float, "str": str}.get(str(spec.type), str)
    )
    try:
        if kind is bool:
            if raw not in ("true", "false", "1", "0"):
                raise ValueError(raw)
            return raw in ("true", "1")
        return kind(raw)
    except ValueError:
        raise PipelineError(
            f"option '{key}' of pass '{pass_name}' expects {kind.__name__}, got {raw!r}"
        ) from None


# ----- running --------------------------------------------------------------------------------


@dataclass
class Instrumentation:
    """What to print or record around each pass (the CLI's `--print-ir-*`, `--dump-ir-dir`,
    `--timing`)."""

    print_ir_after_all: bool = False
    print_ir_before: frozenset[str] = frozenset()
    print_ir_after: frozenset[str] = frozenset()
    dump_ir_dir: str | None = None
    timing: bool = False
    print_locations: bool = False
    stream: TextIO | None = None
    timings: list[tuple[str, float]] = field(default_factory=list)
    dumps_written: int = 0  # numbers `--dump-ir-dir` files on across pipelines (the backend's)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block as one row of `--timing`'s report (a pass, parsing, a backend rung)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings.append((name, time.perf_counter() - started))

    def emit(self, title: str, module: Module) -> None:
        if self.stream is None:
            return
        self.stream.write(f"// -----// IR Dump {title} //----- //\n")
        self.stream.write(print_module(module, self.print_locations))
        self.stream.flush()


@dataclass
class PassManager:
    passes: Sequence[ModulePass]
    verify_each: bool = True
    instrumentation: Instrumentation = field(default_factory=Instrumentation)
    statistics: Callable[[Module], dict[str, int]] | None = None

    def run(self, module: Module) -> Module:
        inst = self.instrumentation
        if inst.dump_ir_dir and inst.dumps_written == 0:  # the first dump of the run
            _make_dump_directory(inst.dump_ir_dir)
            self._dump(module, "input")
        for pass_ in self.passes:
            if pass_.name in inst.print_ir_before:
                inst.emit(f"Before {pass_.pipeline_text()}", module)
            with inst.phase(pass_.pipeline_text()):
                changed = pass_.run(module)
            if self.verify_each and changed is not False:
                try:
                    verify_module(module)
                except VerifyError as error:
                    raise PassFailure(pass_.name, error, print_module(module, True)) from None
            if inst.print_ir_after_all or pass_.name in inst.print_ir_after:
                inst.emit(f"After {pass_.pipeline_text()}", module)
            if inst.dump_ir_dir:
                self._dump(module, pass_.name)
        return module

    def _dump(self, module: Module, label: str) -> None:
        inst = self.instrumentation
        assert inst.dump_ir_dir is not None
        path = os.path.join(inst.dump_ir_dir, f"{inst.dumps_written:02d}-{label}.tcir")
        try:
            with open(path, "w") as handle:
                handle.write(print_module(module, inst.print_locations))
        except OSError as error:
            raise DumpError(f"cannot write IR dump '{path}': {error.strerror or error}") from None
        inst.dumps_written += 1

    def timing_report(self, extra: dict[str, int] | None = None) -> str:
        """A table like MLIR's `-mlir-timing`: wall time per phase (parsing, each pass, the
        backend's rungs) and the total."""
        timings = self.instrumentation.timings
        total = sum(t for _, t in timings) or 1e-12
        lines = [
            "===" + "-" * 70 + "===",
            "  tensorc timing report",
            "===" + "-" * 70 + "===",
            f"  Total Execution Time: {total:.4f} seconds",
            "",
            "   ----Wall Time----  ----Name----",
        ]
        for name, seconds in timings:
            lines.append(f"   {seconds:8.4f} ({100 * seconds / total:5.1f}%)  {name}")
        lines.append(f"   {total:8.4f} (100.0%)  Total")
        for key, value in (extra or {}).items():
            lines.append(f"  {key}: {value}")
        return "\n".join(lines) + "\n"


def _make_dump_directory(directory: str) -> None:
    """`--dump-ir-dir`, created when missing; `DumpError` naming it when it cannot be."""
    try:
        os.makedirs(directory, exist_ok=True)
    except FileExistsError:
        raise DumpError(
            f"cannot create IR dump directory '{directory}': a file of that name exists"
        ) from None
    except OSError as error:
        raise DumpError(
            f"cannot create IR dump directory '{directory}': {error.strerror or error}"
        ) from None

"""The compiler driver: source -> IR -> pipeline -> target, with an emit ladder.

    stage     what comes out
    ir        the optimised IR text (`--emit=ir`)
    header    the artifact's C header (needs only the signatures)
    llvm      the CPU backend's optimised LLVM IR
    asm/obj   host assembly / an ELF object of the generated code
    so        the artifact: an ELF shared object with the manifest (SPEC section 5)
    ptx       the CUDA backend's PTX (`target="cuda"`; `llvm` is then its NVVM IR)

Each rung returns early when it is the one asked for, as in the MLIR Toy driver.

`compile(..., target="cpu")` keeps the artifacts it builds in an on-disk cache
(`TENSORC_CACHE_DIR`, default `~/.cache/tensorc`), keyed by the source text, the options,
the compiler (its version and a digest of its own sources) and the host CPU; a hit loads the
cached artifact without importing llvmlite.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tensorc.files import write_atomically
from tensorc.gc_pause import cycle_collection_paused
from tensorc.ir.core import VerifyError
from tensorc.ir.diagnostics import Diagnostic, DiagnosticError, render_diagnostic
from tensorc.ir.dialects.func import Module
from tensorc.ir.location import Location
from tensorc.ir.parser import parse_module
from tensorc.ir.verifier import verify_module
from tensorc.passes import Instrumentation, ModulePass, PassManager, parse_pipeline, pipeline_for
from tensorc.passes.vjp_rules import AutodiffError

TARGETS = ("cpu", "cuda", "interp")
EMIT_KINDS = ("so", "ir", "llvm", "ptx", "asm", "obj", "header")
NATIVE_EMIT_KINDS = ("so", "llvm", "asm", "obj", "header")


class CompileError(Exception):
    """A program error: `.diagnostics` holds each located error; `str()` renders them all."""

    def __init__(self, error: DiagnosticError, sources: dict[str, str]) -> None:
        self.diagnostics = list(error.diagnostics)
        self.sources = sources
        super().__init__(self.render())

    @classmethod
    def at(cls, message: str, loc: Location, filename: str, text: str) -> CompileError:
        """One error at `loc` of the source `text` named `filename`."""
        return cls(DiagnosticError([Diagnostic(message, loc)]), {filename: text})

    def render(self) -> str:
        return "\n".join(
            render_diagnostic(d, self.sources.get(d.loc.file) if d.loc else None)
            for d in self.diagnostics
        )


@dataclass
class Source:
    text: str
    filename: str

    @staticmethod
    def load(source_or_path: str | os.PathLike[str]) -> Source:
        """A path is read: a `PathLike`, or a one-line str that names an existing file, ends in
        `.tc`/`.tcir`, or cannot be a program (it has no `(`). Other text is source, and so
        are an empty or blank string and a comment (an empty module)."""
        if isinstance(source_or_path, os.PathLike):
            return Source.read(source_or_path)
        if not isinstance(source_or_path, str):
            raise TypeError(
                f"source_or_path must be a str or a path, not {type(source_or_path).__name__}"
            )
        text = source_or_path
        stripped = text.strip()
        looks_like_path = (
            "\n" not in text
            and stripped != ""
            and not stripped.startswith("#")
            and (text.endswith((".tc", ".tcir")) or os.path.exists(text) or "(" not in text)
        )
        if looks_like_path:
            return Source.read(text)
        return Source(text, "<string>")

    @staticmethod
    def read(path: str | os.PathLike[str]) -> Source:
        """The file at `path` as UTF-8 text (a leading byte-order mark is dropped). OSError when
        it cannot be read; a byte that is not UTF-8 is a program error at its position."""
        filename = str(path)
        data = Path(path).read_bytes()
        try:
            return Source(data.decode("utf-8-sig"), filename)
        except UnicodeDecodeError as error:  # error.object is the text after any mark
            before = error.object[: error.start].decode("utf-8", errors="replace")
            line = before.count("\n") + 1
            col = len(before) - (before.rfind("\n") + 1) + 1
            raise CompileError.at(
                f"invalid UTF-8 byte 0x{error.object[error.start]:02x}: a source file must be "
                "UTF-8 text",
                Location(filename, line, col),
                filename,
                error.object.decode("utf-8", errors="replace"),
            ) from None

    @property
    def is_ir(self) -> bool:
        return self.filename.endswith(".tcir")


@dataclass
class CompileOptions:
    target: str = "cpu"
    opt_level: int = 2
    pipeline: str | None = None  # overrides opt_level's pipeline
    verify_each: bool = True
    instrumentation: Instrumentation = field(default_factory=Instrumentation)

    def passes(self) -> list[ModulePass]:
        if self.pipeline is not None:
            return parse_pipeline(self.pipeline)
        return pipeline_for(self.opt_level)


def parse_source(source: Source) -> Module:
    """Source text to IR: the frontend for `.tc`, the IR parser for `.tcir`."""
    try:
        if source.is_ir:
            module = parse_module(source.text, source.filename)
            _verify_parsed(module)
            return module
        from tensorc.frontend import compile_source

        return compile_source(source.text, source.filename)
    except DiagnosticError as error:
        raise CompileError(error, {source.filename: source.text}) from None


def _verify_parsed(module: Module) -> None:
    """Verifier failures in hand-written IR are program errors at the op's location."""
    try:
        verify_module(module)
    except VerifyError as error:
        loc = error.op.loc if error.op is not None else None
        raise DiagnosticError([Diagnostic(f"invalid IR: {error}", loc)]) from None


def optimize(module: Module, options: CompileOptions) -> PassManager:
    manager = PassManager(options.passes(), options.verify_each, options.instrumentation)
    manager.run(module)
    return manager


def compile_to_ir(source: Source, options: CompileOptions) -> tuple[Module, PassManager]:
    with options.instrumentation.phase("parse" if source.is_ir else "frontend"):
        module = parse_source(source)
    with _located_errors(source, AutodiffError):
        manager = optimize(module, options)
    return module, manager


def compile(
    source_or_path: str | os.PathLike[str],
    target: str = "cpu",
    opt_level: int = 2,
    passes: str | None = None,
    arch: str | None = None,
):
    """Compile in-process and load the result (SPEC §4); `arch` is the CUDA architecture
    (default sm_80) of `target="cuda"`."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}; got {target!r}")
    if isinstance(opt_level, bool) or not isinstance(opt_level, int) or not 0 <= opt_level <= 3:
        raise ValueError(f"opt_level must be an int from 0 to 3; got {opt_level!r}")
    source = Source.load(source_or_path)
    options = CompileOptions(target=target, opt_level=opt_level, pipeline=passes)
    with cycle_collection_paused():
        if target == "cpu":
            return _compile_cpu(source, options)
        if target == "cuda":
            return _compile_cuda(source, options, arch)
        module, _ = compile_to_ir(source, options)
    if target == "interp":
        from tensorc.interp.module import InterpModule

        return InterpModule(module)
    raise NotImplementedError(
        f"the {target} backend is not built yet in this version; use target='interp' or 'cpu'"
    )


# ----- the CPU backend ------------------------------------------------------------------------


def _compile_cpu(source: Source, options: CompileOptions):
    """Build (or find in the cache) the artifact and load it."""
    from tensorc.codegen.cpu.cache import artifact_key, artifact_path

    key_options = {
        "target": "cpu",
        "opt_level": options.opt_level,
        "passes": options.pipeline,
        "ir": source.is_ir,
    }
    path = artifact_path(artifact_key(source.text, key_options, compiler_version()))
    return _load_or_build(
        path, lambda: native_build(compile_to_ir(source, options)[0], source, options)
    )


def _load_or_build(path: Path, build: Callable[[], Any]):
    """Load the cached artifact at `path`, or `build()` one (anything with
    `write_shared_object`), write it there and load it. A damaged entry is built again; an
    unwritable cache gets the artifact written beside the process instead. Loading errors
    other than a damaged file (`CudaUnavailableError`: no pycuda or GPU) propagate."""
    import tensorc_runtime

    if path.is_file():
        try:
            return tensorc_runtime.load(path)
        except tensorc_runtime.ArtifactError as error:
            from tensorc_runtime.cuda import CudaUnavailableError

            if isinstance(error, CudaUnavailableError):
                raise
    artifact = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        artifact.write_shared_object(path)
    except OSError:
        path = Path(tempfile.mkdtemp(prefix="tensorc-")) / path.name
        artifact.write_shared_object(path)
    return tensorc_runtime.load(path)


_COMPILER_VERSION: str | None = None


def compiler_version() -> str:
    """`tensorc.__version__` plus a digest of the compiler's own sources, so that a changed
    compiler never reuses an artifact the old one cached. (`os.walk`, not `Path.rglob`: the
    latter took 8 ms of each cold compile, most of it listing `__pycache__`.)"""
    global _COMPILER_VERSION
    if _COMPILER_VERSION is None:
        import hashlib

        from tensorc import __version__

        package = os.path.dirname(os.path.abspath(__file__))
        digest = hashlib.sha256()
        for folder, subfolders, files in os.walk(package):
            subfolders[:] = sorted(name for name in subfolders if name != "__pycache__")
            for name in sorted(files):
                if not name.endswith((".py", ".c", ".lark", ".tc")):
                    continue
                path = os.path.join(folder, name)
                digest.update(os.path.relpath(path, package).encode() + b"\0")
                with open(path, "rb") as source_file:
                    digest.update(source_file.read())
        _COMPILER_VERSION = f"{__version__}+{digest.hexdigest()[:16]}"
    return _COMPILER_VERSION


def native_build(module: Module, source: Source, options: CompileOptions):
    """The CPU backend's build of an optimised module (`tensorc.codegen.cpu.backend`)."""
    from tensorc.codegen.cpu.backend import CpuBuild
    from tensorc.codegen.cpu.irutil import UnsupportedError

    extra = {"passes": options.pipeline} if options.pipeline is not None else {}
    with _located_errors(source, UnsupportedError):
        return CpuBuild.create(
            module, source.text, options.opt_level, extra, options.instrumentation
        )


@contextmanager
def _located_errors(source: Source, *kinds: type[Exception]) -> Iterator[None]:
    """An error of `kinds` that knows where it is (`.message`, `.loc`: a call left in place by
    `--passes=autodiff`, a bf16 parameter on the CPU) is a program error at that place,
    rendered like the frontend's. One without a location propagates as it is."""
    try:
        yield
    except kinds as error:
        if error.loc is None:  # type: ignore[attr-defined]
            raise
        raise CompileError.at(
            error.message, error.loc, source.filename, source.text  # type: ignore[attr-defined]
        ) from None


def emit_native(
    source: Source, options: CompileOptions, kind: str, output: str | os.PathLike[str]
) -> PassManager:
    """The `kind` rung of the emit ladder for the CPU target, written atomically to `output`;
    returns the pass manager of the IR pipeline (for `--timing`)."""
    if kind not in NATIVE_EMIT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(NATIVE_EMIT_KINDS)}; got {kind!r}")
    module, manager = compile_to_ir(source, options)
    build = native_build(module, source, options)
    phase = options.instrumentation.phase
    if kind == "header":
        with phase("backend: header"):
            write_atomically(output, build.header())
        return manager
    with phase("backend: lower to LLVM IR"):
        build.unoptimized  # noqa: B018 (a cached property: built here to be timed alone)
    if kind == "llvm":
        with phase("backend: LLVM optimisation"):
            write_atomically(output, build.llvm_ir())
    elif kind == "asm":
        with phase("backend: LLVM optimisation and assembly"):
            write_atomically(output, build.assembly())
    elif kind == "obj":
        with phase("backend: LLVM optimisation and object code"):
            write_atomically(output, build.object_code())
    else:
        with phase("backend: LLVM optimisation, object code and link"):
            build.write_shared_object(output)
    return manager


def function_names(module: Module) -> Sequence[str]:
    return [f.sym_name for f in module.functions]


# ----- the CUDA backend -----------------------------------------------------------------------

CUDA_EMIT_KINDS = ("so", "ptx", "llvm")


def cuda_build(module: Module, source: Source, options: CompileOptions, arch: str | None):
    """The CUDA backend's build of an optimised module (`tensorc.codegen.cuda.backend`)."""
    from tensorc.codegen.cuda.backend import CudaBuild
    from tensorc.codegen.cuda.target import DEFAULT_ARCH

    extra = {"passes": options.pipeline} if options.pipeline is not None else {}
    return CudaBuild.create(module, source.text, options.opt_level, arch or DEFAULT_ARCH,
                            extra, options.instrumentation)


def emit_cuda(
    source: Source, options: CompileOptions, kind: str, output: str | os.PathLike[str],
    arch: str | None = None,
) -> PassManager:
    """The `kind` rung for the CUDA target (`so`, `ptx`, or `llvm`: the NVVM IR), written
    atomically to `output`; returns the pass manager of the IR pipeline."""
    if kind not in CUDA_EMIT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(CUDA_EMIT_KINDS)}; got {kind!r}")
    module, manager = compile_to_ir(source, options)
    build = cuda_build(module, source, options, arch)
    with options.instrumentation.phase(f"backend: {kind}"):
        if kind == "ptx":
            write_atomically(output, build.ptx())
        elif kind == "llvm":
            write_atomically(output, build.nvvm_ir())
        else:
            build.write_shared_object(output)
    return manager


def _compile_cuda(source: Source, options: CompileOptions, arch: str | None):
    """Build (or find in the cache) the CUDA artifact and load it: without pycuda or a GPU,
    loading raises `tensorc_runtime.cuda.CudaUnavailableError` saying which is missing."""
    from tensorc.codegen.cpu.cache import artifact_key, artifact_path
    from tensorc.codegen.cuda.target import DEFAULT_ARCH, check_arch

    arch = check_arch(arch or DEFAULT_ARCH)
    key_options = {
        "target": "cuda",
        "arch": arch,
        "opt_level": options.opt_level,
        "passes": options.pipeline,
        "ir": source.is_ir,
    }
    path = artifact_path(artifact_key(source.text, key_options, compiler_version()))
    return _load_or_build(
        path, lambda: cuda_build(compile_to_ir(source, options)[0], source, options, arch)
    )

"""The `tensorc` command line (SPEC §3). Exit status: 0 success, 1 a program error, 2 a usage
error. Diagnostics go to stderr; nothing prints a Python traceback."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from tensorc import __version__
from tensorc.driver import (
    EMIT_KINDS,
    CompileError,
    CompileOptions,
    Source,
    compile_to_ir,
    emit_native,
)
from tensorc.files import write_atomically
from tensorc.gc_pause import cycle_collection_paused
from tensorc.ir.printer import print_module
from tensorc.passes import (
    DumpError,
    Instrumentation,
    PassFailure,
    PassManager,
    PipelineError,
    available_passes,
)

EXIT_OK, EXIT_PROGRAM_ERROR, EXIT_USAGE = 0, 1, 2

DESCRIPTION = """\
tensorc: an ahead-of-time tensor compiler.

Write tensor math once in a .tc file, get optimised, differentiable native code.

  tensorc check model.tc                    report errors, compile nothing
  tensorc opt model.tc --passes=inline,cse  print the IR after a pipeline (like mlir-opt)
  tensorc compile model.tc --emit=ir -o model.tcir
  tensorc compile model.tc -o model.so [--target=cpu|cuda] [-O0..-O3]
  tensorc inspect model.so                  what an artifact holds
  tensorc run model.so FUNC x=x.npy ...     run a compiled function on .npy files
"""


class UsageError(Exception):
    pass


class OutputError(Exception):
    """`-o` cannot be written (exit 1, as a C compiler's "cannot open output file")."""


class _ArgumentParser(argparse.ArgumentParser):
    subcommands: dict[str, argparse.ArgumentParser]  # the top-level parser's, by name

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"tensorc: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def _add_pipeline_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("pipeline and IR dumps")
    group.add_argument(
        "--passes",
        metavar="PIPELINE",
        help="run this pipeline instead of the -O level's, e.g. "
        "'inline,canonicalize,cse,fusion{max-ops=32}'",
    )
    group.add_argument("--print-ir-after-all", action="store_true", help="IR after every pass")
    group.add_argument("--print-ir-before", action="append", default=[], metavar="PASS")
    group.add_argument("--print-ir-after", action="append", default=[], metavar="PASS")
    group.add_argument("--dump-ir-dir", metavar="DIR", help="one numbered .tcir file per pass")
    group.add_argument("--timing", action="store_true", help="time per pass, to stderr")
    group.add_argument(
        "--print-locations", action="store_true", help="print source locations in IR dumps"
    )
    group.add_argument(
        "--no-verify", action="store_true", help="do not run the verifier between passes"
    )


def build_parser() -> _ArgumentParser:
    parser = _ArgumentParser(
        prog="tensorc", description=DESCRIPTION, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"tensorc {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_ArgumentParser
    )
    parser.subcommands = commands.choices

    compile_cmd = commands.add_parser("compile", help="compile a .tc file to an artifact or IR")
    compile_cmd.add_argument("file", metavar="FILE.tc")
    compile_cmd.add_argument("-o", dest="output", metavar="OUT", help="output file")
    compile_cmd.add_argument("--target", choices=("cpu", "cuda"), default="cpu")
    compile_cmd.add_argument(
        "-O",
        dest="opt_level",
        type=int,
        choices=range(4),
        default=2,
        metavar="{0,1,2,3}",
        help="optimisation level (default 2)",
    )
    compile_cmd.add_argument("--arch", default="sm_80", help="CUDA architecture (sm_75..sm_90)")
    compile_cmd.add_argument("--emit", choices=EMIT_KINDS, default="so")
    _add_pipeline_options(compile_cmd)

    opt_cmd = commands.add_parser("opt", help="run passes over .tc or .tcir, print the IR")
    opt_cmd.add_argument("file", metavar="FILE.tc|FILE.tcir")
    opt_cmd.add_argument("-o", dest="output", metavar="OUT", help="write the IR here")
    opt_cmd.add_argument(
        "-O",
        dest="opt_level",
        type=int,
        choices=range(4),
        default=None,
        metavar="{0,1,2,3}",
        help="run the -O level's pipeline (default: no passes)",
    )
    _add_pipeline_options(opt_cmd)

    check_cmd = commands.add_parser("check", help="report every error in a .tc file")
    check_cmd.add_argument("file", metavar="FILE.tc")

    inspect_cmd = commands.add_parser("inspect", help="describe a compiled artifact")
    inspect_cmd.add_argument("artifact", metavar="OUT.so")
    inspect_cmd.add_argument("--json", action="store_true", help="print the manifest as JSON")

    run_cmd = commands.add_parser("run", help="run a compiled function on .npy files")
    run_cmd.add_argument("artifact", metavar="OUT.so")
    run_cmd.add_argument("function", metavar="FUNC")
    run_cmd.add_argument("inputs", nargs="*", metavar="name=value.npy")
    run_cmd.add_argument("-o", dest="output", metavar="PREFIX", help="write results as PREFIX*.npy")
    return parser


def _instrumentation(args: argparse.Namespace) -> Instrumentation:
    return Instrumentation(
        print_ir_after_all=args.print_ir_after_all,
        print_ir_before=frozenset(args.print_ir_before),
        print_ir_after=frozenset(args.print_ir_after),
        dump_ir_dir=args.dump_ir_dir,
        timing=args.timing,
        print_locations=args.print_locations,
        stream=sys.stderr,
    )


def _check_pass_names(args: argparse.Namespace) -> None:
    known = set(available_passes())
    for name in list(args.print_ir_before) + list(args.print_ir_after):
        if name not in known:
            raise PipelineError(
                f"unknown pass '{name}'; available passes: {', '.join(sorted(known))}"
            )


def _compile_options(
    args: argparse.Namespace, target: str, opt_level: int, pipeline: str | None
) -> CompileOptions:
    """The options of a command, its pass names and pipeline checked first: a malformed
    pipeline is a usage error, reported before any parsing."""
    _check_pass_names(args)
    options = CompileOptions(
        target=target,
        opt_level=opt_level,
        pipeline=pipeline,
        verify_each=not args.no_verify,
        instrumentation=_instrumentation(args),
    )
    options.passes()
    return options


def _check_output_path(args: argparse.Namespace) -> None:
    """`-o` is checked before any work: its directory must exist, and it must be neither a
    directory nor the input file (a compile would replace the source with its output)."""
    path = args.output
    if not path or path == "-":
        return
    if os.path.isdir(path):
        raise OutputError(f"cannot write '{path}': it is a directory")
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        raise OutputError(f"cannot write '{path}': there is no directory '{parent}'")
    if os.path.exists(path) and os.path.exists(args.file) and os.path.samefile(path, args.file):
        raise OutputError(f"-o '{path}' is the input file; choose another output")


def _load(path: str) -> Source:
    try:
        return Source.read(path)
    except OSError as error:
        raise UsageError(f"cannot read '{path}': {error.strerror or error}") from None


def _run_pipeline(args: argparse.Namespace, opt_level: int | None):
    options = _compile_options(
        args,
        target=getattr(args, "target", "cpu"),
        opt_level=opt_level if opt_level is not None else 0,
        # `opt` without -O or --passes runs nothing; -O0 is the O0 pipeline like any level
        pipeline=args.passes if args.passes is not None else (
            None if opt_level is not None else ""
        ),
    )
    module, manager = compile_to_ir(_load(args.file), options)
    if args.timing:
        sys.stderr.write(manager.timing_report(_statistics(module)))
    return module


def _statistics(module) -> dict[str, int]:
    from tensorc.passes.fusion import count_kernels

    return {"ops": sum(1 for _ in module.walk()), "kernels": count_kernels(module)}


def cmd_check(args: argparse.Namespace) -> int:
    from tensorc.driver import parse_source

    parse_source(_load(args.file))
    return EXIT_OK


def cmd_opt(args: argparse.Namespace) -> int:
    _check_output_path(args)
    module = _run_pipeline(args, args.opt_level)
    text = print_module(module, args.print_locations)
    return _write_output(args.output or "-", text)


def _write_output(path: str, text: str) -> int:
    """`text` to `path` (atomically), or to stdout for `-`."""
    if path == "-":
        sys.stdout.write(text)
        return EXIT_OK
    try:
        write_atomically(path, text)
    except OSError as error:
        return _program_error(f"cannot write '{path}': {error.strerror or error}")
    return EXIT_OK


def cmd_compile(args: argparse.Namespace) -> int:
    if args.emit != "ir" and args.target == "cuda":
        return _compile_cuda(args)
    if args.emit == "ptx":
        raise UsageError("--emit=ptx is for --target=cuda; the cpu target emits so, llvm, asm, "
                         "obj, header or ir")
    if not args.output:
        raise UsageError("compile needs -o OUT")
    _check_output_path(args)
    if args.emit == "ir":
        module = _run_pipeline(args, args.opt_level)
        return _write_output(args.output, print_module(module, args.print_locations))
    return _compile_native(args)


TEXT_EMIT_KINDS = ("llvm", "asm", "header")


def _compile_native(args: argparse.Namespace) -> int:
    from tensorc.codegen.artifact import BuildError

    options = _compile_options(args, "cpu", args.opt_level, args.passes)
    if args.output == "-" and args.emit not in TEXT_EMIT_KINDS:
        kinds = "|".join(TEXT_EMIT_KINDS)
        raise UsageError(f"-o - writes text to stdout: use it with --emit={kinds}|ir")
    return _build(
        args,
        lambda output: emit_native(_load(args.file), options, args.emit, output),
        (BuildError,),
    )


def _compile_cuda(args: argparse.Namespace) -> int:
    """`--target=cuda`: `--emit=so|ptx|llvm` (`-o -` writes PTX or NVVM IR to stdout)."""
    from tensorc.codegen.artifact import BuildError
    from tensorc.codegen.cuda.ptxas import PtxasError
    from tensorc.codegen.cuda.target import check_arch
    from tensorc.driver import CUDA_EMIT_KINDS, emit_cuda

    if args.emit not in CUDA_EMIT_KINDS:
        raise UsageError(f"--target=cuda emits {', '.join(CUDA_EMIT_KINDS)} or ir, "
                         f"not {args.emit}")
    try:
        check_arch(args.arch)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if not args.output:
        raise UsageError("compile needs -o OUT")
    if args.output == "-" and args.emit == "so":
        raise UsageError("-o - writes text to stdout: use it with --emit=ptx|llvm|ir")
    _check_output_path(args)
    options = _compile_options(args, "cuda", args.opt_level, args.passes)
    return _build(
        args,
        lambda output: emit_cuda(_load(args.file), options, args.emit, output, args.arch),
        (BuildError, PtxasError),
    )


def _build(
    args: argparse.Namespace,
    emit: Callable[[str | Path], PassManager],
    build_errors: tuple[type[Exception], ...],
) -> int:
    """`emit` into `-o` (for `-`, into a scratch file then copied to stdout); a build failure
    is a program error; `--timing` reports the passes."""
    from tensorc.codegen.cpu.irutil import UnsupportedError

    try:
        if args.output != "-":
            manager = emit(args.output)
        else:
            with tempfile.TemporaryDirectory(prefix="tensorc-") as workdir:
                output = Path(workdir) / f"out.{args.emit}"
                manager = emit(output)
                sys.stdout.write(output.read_text())
    except UnsupportedError as error:
        return _program_error(error)
    except OSError as error:  # the temporary file's name is no business of the user's
        return _program_error(f"cannot write '{args.output}': {error.strerror or error}")
    except build_errors as error:
        return _program_error(f"cannot build {args.output}: {error}")
    if args.timing:
        sys.stderr.write(manager.timing_report())
    return EXIT_OK


def _program_error(message: object) -> int:
    sys.stderr.write(f"tensorc: error: {message}\n")
    return EXIT_PROGRAM_ERROR


def _check_artifact_path(path: str) -> None:
    """A missing path or a directory is a usage error, like a missing source file; what the
    file holds is for the loader to judge."""
    if os.path.isdir(path):
        raise UsageError(f"cannot read '{path}': it is a directory, not an artifact")
    if not os.path.exists(path):
        raise UsageError(f"cannot read '{path}': No such file or directory")


def cmd_inspect(args: argparse.Namespace) -> int:
    import json

    from tensorc_runtime import ArtifactError
    from tensorc_runtime.elf import read_manifest

    _check_artifact_path(args.artifact)
    try:
        manifest = read_manifest(args.artifact)
        if args.json:
            sys.stdout.write(json.dumps(manifest, indent=2) + "\n")
            return EXIT_OK
        sys.stdout.write(_describe_artifact(args.artifact, manifest))
    except ArtifactError as error:
        return _program_error(error)
    return EXIT_OK


def _describe_artifact(path: str, manifest: dict) -> str:
    from tensorc_runtime import Signature
    from tensorc_runtime.cpu import host_arch, host_cpu_features, missing_features

    features = manifest.get("cpu_features") or []
    options = manifest.get("options") or {}
    rows = [
        ("target", manifest["target"]),
        ("triple", manifest["triple"]),
        ("cpu", manifest["cpu"]),
        ("cpu features", ", ".join(features) or "(none)"),
        ("arch", manifest.get("arch") or "-"),
        ("compiler", f"tensorc {manifest['compiler_version']}"),
        ("format", f"{manifest['format']} version {manifest['format_version']}"),
        ("source hash", manifest.get("source_hash", "-")),
        ("options", ", ".join(f"{key}={value}" for key, value in options.items()) or "-"),
    ]
    host = host_cpu_features()
    artifact_arch = str(manifest["triple"]).split("-", 1)[0]
    if manifest["target"] == "cpu" and artifact_arch == host_arch() and host is not None:
        missing = missing_features(features, host)
        verdict = f"lacks {', '.join(missing)}" if missing else "can run it"
        rows.append(("this machine", verdict))
    lines = [f"{path}: tensorc artifact"]
    lines += [f"  {label + ':':<14}{value}" for label, value in rows]
    functions = manifest["functions"]
    lines.append(f"  functions ({len(functions)}):")
    for entry in functions:
        signature = Signature.from_dict(entry)
        dims = ", ".join(entry.get("symbols", [])) or "none"
        lines.append(f"    {signature}")
        lines.append(f"        entry point {entry['symbol']}, dims [{dims}]")
    return "\n".join(lines) + "\n"


def cmd_run(args: argparse.Namespace) -> int:
    from tensorc_runtime import ArtifactError, load

    _check_artifact_path(args.artifact)
    try:
        module = load(args.artifact)
    except ArtifactError as error:
        return _program_error(error)
    if args.function not in module.functions:
        available = ", ".join(module.functions) or "none"
        raise UsageError(f"no function '{args.function}' in {args.artifact} (it has: {available})")
    function = module[args.function]
    inputs = _run_inputs(function.signature, args.inputs)
    try:
        outputs = function(**inputs)
    except (TypeError, ValueError, IndexError, MemoryError, RuntimeError) as error:
        return _program_error(error)
    if not isinstance(outputs, tuple):
        outputs = (outputs,)
    names = [spec.name for spec in function.signature.results]
    for index, (spec, output) in enumerate(zip(function.signature.results, outputs)):
        if args.output:
            # artifacts of format 2 could name two results alike: then by position
            unique = names.count(spec.name) == 1
            path = f"{args.output}{spec.name if unique else f'result{index}'}.npy"
            _save_npy(path, output)
            sys.stdout.write(f"wrote {path}: {_array_summary_line(output)}\n")
        else:
            sys.stdout.write(f"{spec.name}: {_array_summary_line(output)}\n")
            sys.stdout.write(_array_values(output) + "\n")
    return EXIT_OK


def _run_inputs(signature, items: Sequence[str]) -> dict[str, object]:
    """``name=value`` arguments -> keyword arguments; every parameter exactly once."""
    params = {param.name: param for param in signature.params}
    inputs: dict[str, object] = {}
    for item in items:
        name, separator, value = item.partition("=")
        if not separator or not name:
            raise UsageError(f"expected name=value.npy or name=number, got '{item}'")
        if name not in params:
            raise UsageError(
                f"{signature.name} has no parameter '{name}' "
                f"(its parameters: {', '.join(params) or 'none'})"
            )
        if name in inputs:
            raise UsageError(f"parameter '{name}' given twice")
        inputs[name] = _run_value(name, value)
    missing = [
        f"{name}: {param.type_str()}" for name, param in params.items() if name not in inputs
    ]
    if missing:
        raise UsageError(f"{signature.name} needs a value for {', '.join(missing)}")
    return inputs


def _run_value(name: str, value: str) -> object:
    """A .npy file's array, or a literal scalar (true/false, an int, a float)."""
    import numpy as np

    if value.endswith(".npy") or os.path.exists(value):
        try:
            array = np.load(value, allow_pickle=False)
        except OSError as error:
            raise UsageError(f"{name}: cannot read '{value}': {error.strerror or error}") from None
        except ValueError:
            raise UsageError(f"{name}: '{value}' is not a .npy array file") from None
        if not isinstance(array, np.ndarray):  # an .npz archive of several arrays
            array.close()
            raise UsageError(f"{name}: '{value}' is an .npz archive; give one .npy array")
        return array
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for parse in (int, float):
        try:
            return parse(value)
        except ValueError:
            continue
    raise UsageError(f"{name}: '{value}' is neither a .npy file nor a number")


def _array_summary_line(array) -> str:
    from tensorc_runtime.dtypes import from_numpy_dtype

    try:
        dtype = from_numpy_dtype(array.dtype)
    except ValueError:
        dtype = str(array.dtype)
    return f"{dtype}, shape {tuple(array.shape)}"


def _array_values(array) -> str:
    import numpy as np

    return np.array2string(array, threshold=64, edgeitems=3, max_line_width=100)


def _save_npy(path: str, array) -> None:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    try:
        write_atomically(path, buffer.getvalue())
    except OSError as error:
        raise UsageError(f"cannot write '{path}': {error.strerror or error}") from None


COMMANDS = {
    "check": cmd_check,
    "opt": cmd_opt,
    "compile": cmd_compile,
    "inspect": cmd_inspect,
    "run": cmd_run,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = _parse_arguments(parser, argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        with cycle_collection_paused():
            status = COMMANDS[args.command](args)
        sys.stdout.flush()  # a write error surfaces here, not at interpreter exit
        return status
    except BrokenPipeError:  # `tensorc opt m.tc | head`: the reader has gone, quietly stop
        _silence_stdout()
        return EXIT_PROGRAM_ERROR
    except CompileError as error:
        sys.stderr.write(error.render() + "\n")
        count = len(error.diagnostics)
        sys.stderr.write(f"{count} error{'s' if count != 1 else ''} generated.\n")
        return EXIT_PROGRAM_ERROR
    except (UsageError, PipelineError) as error:
        sys.stderr.write(f"tensorc: error: {error}\n")
        return EXIT_USAGE
    except (DumpError, OutputError) as error:
        return _program_error(error)
    except PassFailure as error:
        sys.stderr.write(f"tensorc: internal compiler error: {error}\n")
        return EXIT_PROGRAM_ERROR
    except KeyboardInterrupt:
        return 130
    except OSError as error:  # the machine's, not the compiler's: a full disk, a closed stream
        _silence_stdout()
        target = f" '{error.filename}'" if error.filename else ""
        sys.stderr.write(f"tensorc: error: cannot write{target}: {error.strerror or error}\n")
        return EXIT_PROGRAM_ERROR
    except Exception as error:  # the compiler never shows a Python traceback
        sys.stderr.write(
            f"tensorc: internal compiler error: {type(error).__name__}: {error}\n"
            "Please report this with the input file.\n"
        )
        return EXIT_PROGRAM_ERROR


def _parse_arguments(parser: _ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line; `run`'s `name=value` arguments may also follow its options
    (`tensorc run m.so f -o out_ x=x.npy`)."""
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "run":
        values = [item for item in extra if "=" in item and not item.startswith("-")]
        args.inputs = [*args.inputs, *values]
        extra = [item for item in extra if item not in values]
    if extra:
        command = parser.subcommands.get(args.command, parser)
        command.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that Python's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())

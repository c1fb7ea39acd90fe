"""Imports flow one way: ir <- {frontend, passes, codegen}; tensorc_runtime imports no tensorc;
llvmlite is imported only in codegen."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tensorc"
RUNTIME = ROOT / "runtime" / "tensorc_runtime"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            names.add("<relative>." + (node.module or ""))
    return names


def layer_imports(folder: Path) -> dict[Path, set[str]]:
    return {p: imported_modules(p) for p in folder.rglob("*.py")}


def test_ir_imports_no_other_layer() -> None:
    for path, names in layer_imports(PACKAGE / "ir").items():
        bad = {
            n for n in names
            if n.startswith(("tensorc.frontend", "tensorc.passes", "tensorc.codegen",
                             "tensorc.interp", "tensorc.driver", "tensorc.cli"))
        }
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_frontend_passes_codegen_do_not_import_each_other_upward() -> None:
    forbidden = {
        "frontend": ("tensorc.passes", "tensorc.codegen", "tensorc.driver", "tensorc.cli"),
        "passes": ("tensorc.frontend", "tensorc.codegen", "tensorc.driver", "tensorc.cli"),
        "codegen": ("tensorc.frontend", "tensorc.driver", "tensorc.cli"),
    }
    for layer, prefixes in forbidden.items():
        for path, names in layer_imports(PACKAGE / layer).items():
            bad = {n for n in names if n.startswith(prefixes)}
            assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_runtime_imports_nothing_from_tensorc() -> None:
    for path, names in layer_imports(RUNTIME).items():
        bad = {n for n in names if n == "tensorc" or n.startswith("tensorc.")}
        bad |= {n for n in names if n.split(".")[0] in ("lark", "llvmlite")}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_llvmlite_only_in_codegen() -> None:
    for path in PACKAGE.rglob("*.py"):
        if (PACKAGE / "codegen") in path.parents:
            continue
        names = imported_modules(path)
        assert not any(n.split(".")[0] == "llvmlite" for n in names), path

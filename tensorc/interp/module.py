"""`tensorc.compile(..., target="interp")`: compiled functions run by the reference interpreter,
with the same argument checks as native artifacts (`tensorc_runtime.Signature`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from tensorc_runtime import Signature

from tensorc.interp.interpreter import Interpreter
from tensorc.ir.dialects.func import Module
from tensorc.ir.signature import function_signature


class InterpFunction:
    def __init__(self, interpreter: Interpreter, signature: Signature) -> None:
        self.interpreter = interpreter
        self.signature = signature
        self.__name__ = signature.name

    def __call__(self, /, *args: Any, **kwargs: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        bound = self.signature.bind(args, kwargs)
        outputs = self.interpreter.run(self.signature.name, bound.arrays)
        owned: list[np.ndarray] = []
        for out in outputs:
            owned.append(_owned(out, bound.arrays + owned))
        return owned[0] if len(owned) == 1 else tuple(owned)

    def __repr__(self) -> str:
        return f"<tensorc function {self.signature} (interp)>"


def _owned(output: np.ndarray, inputs: list[np.ndarray]) -> np.ndarray:
    """A result the caller owns: never one of the argument arrays or a view of one."""
    if any(np.shares_memory(output, x) for x in inputs) or not output.flags.writeable:
        return np.array(output, copy=True)
    return output


class InterpModule:
    """A compiled module whose functions run in the reference interpreter."""

    target = "interp"

    def __init__(self, module: Module) -> None:
        self.ir = module
        self._interpreter = Interpreter(module)
        self._functions = {
            f.sym_name: InterpFunction(
                self._interpreter, Signature.from_dict(function_signature(f))
            )
            for f in module.functions
        }

    @property
    def functions(self) -> Mapping[str, Signature]:
        return {name: fn.signature for name, fn in self._functions.items()}

    def __getattr__(self, name: str) -> InterpFunction:
        functions = self.__dict__.get("_functions", {})
        if name in functions:
            return functions[name]
        raise AttributeError(f"module has no function '{name}' (it has: {', '.join(functions)})")

    def __getitem__(self, name: str) -> InterpFunction:
        return self._functions[name]

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._functions))

    def __repr__(self) -> str:
        return f"<tensorc module (interp): {', '.join(self._functions)}>"

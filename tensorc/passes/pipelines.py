"""The ordered pipelines behind -O0 ... -O3, as PyTensor's named phases:
canonicalize -> stabilize -> specialize -> fusion. Autodiff runs first at every level, so the
backward computation is optimised like the forward one. At -O2 and -O3 `stabilize` also runs
before it: `log(sum(exp(x)))` is a `logsumexp` by then, and its gradient is the stable
`softmax`, where the gradient of the written form is `inf / inf` for large `x`.

`pipeline_for` keeps the passes of a level that are registered, in order, and leaves out the
others (passes still being written); `missing_passes` says which those are.
"""

from __future__ import annotations

from tensorc.passes.pass_manager import ModulePass, available_passes, parse_pipeline

_O2 = (
    "inline,stabilize,autodiff,canonicalize,cse,stabilize,canonicalize,fold,decompose,"
    "canonicalize,cse,{fusion},dce"
)

PIPELINES: dict[int, str] = {
    0: "inline,autodiff,dce",
    1: "inline,autodiff,canonicalize,cse,dce",
    2: _O2.format(fusion="fusion"),
    3: _O2.format(fusion="fusion{max-ops=64}"),
}


def split_pipeline(text: str) -> list[str]:
    """`a,b{x=1,y=2},c` -> `["a", "b{x=1,y=2}", "c"]` (commas inside braces stay)."""
    items: list[str] = []
    depth = 0
    start = 0
    for index, char in enumerate(text):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(text[start:index].strip())
            start = index + 1
    items.append(text[start:].strip())
    return [item for item in items if item]


def _pass_name(item: str) -> str:
    return item.split("{", 1)[0].strip()


def _check_level(opt_level: int) -> None:
    if isinstance(opt_level, bool) or opt_level not in PIPELINES:
        raise ValueError(f"opt_level must be 0, 1, 2 or 3, not {opt_level!r}")


def missing_passes(opt_level: int) -> list[str]:
    """The passes of the level's pipeline that are not registered (yet), in order."""
    _check_level(opt_level)
    registered = set(available_passes())
    items = split_pipeline(PIPELINES[opt_level])
    return list(dict.fromkeys(_pass_name(i) for i in items if _pass_name(i) not in registered))


def pipeline_for(opt_level: int) -> list[ModulePass]:
    """The level's pipeline, made of the passes that are registered."""
    _check_level(opt_level)
    registered = set(available_passes())
    items = [i for i in split_pipeline(PIPELINES[opt_level]) if _pass_name(i) in registered]
    return parse_pipeline(",".join(items))

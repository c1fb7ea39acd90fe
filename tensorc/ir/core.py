"""The IR's building blocks: values, operations, blocks, regions, and the op registry.

An operation class declares what it is, in the manner of xDSL's IRDL:

    @register_op
    class AddOp(ElementwiseBinaryOp):
        name = "tc.add"
        traits = frozenset({Pure, Commutative})

with named accessors for operands (`lhs = operand_def(0)`) and attributes
(`axes = attr_def("axes")`), a `verify_` hook for op-specific rules, and an optional
`infer_result_types` used both to build ops and to verify them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

from tensorc.ir.location import Location
from tensorc.ir.types import TensorType


class VerifyError(Exception):
    """An IR invariant does not hold; `op` is the offending operation when known."""

    def __init__(self, message: str, op: Operation | None = None) -> None:
        super().__init__(message)
        self.op = op


# ----- traits -------------------------------------------------------------------------------


class Trait:
    """A property of an op kind that passes may query (`op.has_trait(Pure)`)."""


class Pure(Trait):
    """No side effects: removable when unused, and CSE-able."""


class Commutative(Trait):
    """The first two operands may be swapped."""


class Elementwise(Trait):
    """Maps each element position of same-shaped operands to the same result position."""


class Terminator(Trait):
    """Must be the last op of its block."""


class IsolatedFromAbove(Trait):
    """Regions of this op may not refer to values defined outside them."""


class NoCSE(Trait):
    """Never merged by CSE even when identical (e.g. ops whose identity matters)."""


# ----- values -------------------------------------------------------------------------------


class Use:
    __slots__ = ("op", "index")

    def __init__(self, op: Operation, index: int) -> None:
        self.op = op
        self.index = index


class Value:
    """An SSA value: typed, defined once, with a list of its uses."""

    __slots__ = ("type", "name_hint", "uses")

    def __init__(self, type: TensorType, name_hint: str | None = None) -> None:
        self.type = type
        self.name_hint = name_hint
        self.uses: list[Use] = []

    @property
    def owner(self) -> Operation | Block:
        raise NotImplementedError

    @property
    def has_uses(self) -> bool:
        return bool(self.uses)

    def users(self) -> list[Operation]:
        seen: dict[int, Operation] = {}
        for use in self.uses:
            seen.setdefault(id(use.op), use.op)
        return list(seen.values())

    def replace_all_uses_with(self, new: Value) -> None:
        self.replace_uses_by(lambda user: new)

    def replace_uses_by(self, replacement: Callable[[Operation], Value | None]) -> None:
        """Move each use whose user `replacement` maps to a value (not None) onto that value.

        One pass over the uses: `set_operand` per use would rescan this value's uses each
        time, quadratic for a constant that thousands of ops use."""
        kept: list[Use] = []
        for use in self.uses:
            new = replacement(use.op)
            if new is None or new is self:
                kept.append(use)
                continue
            use.op._operands[use.index] = new
            new.uses.append(use)
        self.uses = kept

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name_hint or ''}: {self.type}>"


class OpResult(Value):
    __slots__ = ("op", "index")

    def __init__(self, type: TensorType, op: Operation, index: int) -> None:
        super().__init__(type)
        self.op = op
        self.index = index

    @property
    def owner(self) -> Operation:
        return self.op


class BlockArgument(Value):
    __slots__ = ("block", "index")

    def __init__(self, type: TensorType, block: Block, index: int, name_hint: str | None) -> None:
        super().__init__(type, name_hint)
        self.block = block
        self.index = index

    @property
    def owner(self) -> Block:
        return self.block


# ----- declarative accessors ----------------------------------------------------------------


class operand_def:
    """`lhs = operand_def(0)` gives ops a named accessor for operand 0."""

    def __init__(self, index: int) -> None:
        self.index = index

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, op: Operation | None, cls: type) -> Any:
        if op is None:
            return self
        return op.operands[self.index]


class attr_def:
    """`axes = attr_def(list, items=int)` names an attribute, its Python type(s), the type(s) of
    a list's elements, and its default.

    The op's `attribute_defs` collects these, so the verifier and the parser know which
    attributes an op kind takes. A `bool` is never taken for an `int` (nor the reverse).
    """

    REQUIRED = object()

    def __init__(
        self,
        kind: type | tuple[type, ...],
        default: Any = REQUIRED,
        items: type | tuple[type, ...] | None = None,
    ) -> None:
        self.kind = kind
        self.default = default
        self.items = items

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, op: Operation | None, cls: type) -> Any:
        if op is None:
            return self
        return op.attributes.get(self.name, self.default)

    @property
    def required(self) -> bool:
        return self.default is attr_def.REQUIRED

    def problem(self, value: Any) -> str | None:
        """Why `value` is not a valid value of this attribute, or None when it is."""
        if not is_kind(value, self.kind):
            return f"must be {describe_kinds(self.kind)}, not {describe_value(value)}"
        if self.items is None or not isinstance(value, list):
            return None
        for index, item in enumerate(value):
            if not is_kind(item, self.items):
                return (
                    f"must be a list of {describe_kinds(self.items, plural=True)}; element "
                    f"{index} is {describe_value(item)}"
                )
        return None


def is_kind(value: Any, kind: type | tuple[type, ...]) -> bool:
    """`isinstance`, except that a bool is not an int (nor an int a bool)."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool):
        return bool in kinds
    return isinstance(value, kinds)


_KIND_NAMES: dict[str, tuple[str, str]] = {
    "int": ("an integer", "integers"),
    "float": ("a float", "floats"),
    "bool": ("true or false", "booleans"),
    "str": ("a string", "strings"),
    "list": ("a list", "lists"),
    "NoneType": ("none", "none"),
    "DimExpr": ("a size #dim<...>", "sizes #dim<...>"),
    "SymbolRef": ("a symbol @name", "symbols @name"),
    "FunctionType": ("a function type", "function types"),
    "TensorType": ("a type #type<...>", "types #type<...>"),
    "DType": ("a dtype", "dtypes"),
    "ndarray": ("a dense<...> constant", "dense<...> constants"),
    "AffineMap": ("an affine map #map<...>", "affine maps #map<...>"),
    "ShapeConstraint": ("a shape constraint #constraint<...>", "shape constraints"),
}


def describe_kinds(kind: type | tuple[type, ...], plural: bool = False) -> str:
    """`(int, DimExpr)` -> "an integer or a size #dim<...>"."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = [_KIND_NAMES.get(k.__name__, (k.__name__, k.__name__))[plural] for k in kinds]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def describe_value(value: Any) -> str:
    """What a value is, for messages: "a string", "an integer (3)"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    kind = describe_kinds(type(value))
    if isinstance(value, (int, float, str)) or type(value).__name__ in (
        "SymbolRef", "DimExpr", "DType"
    ):
        text = repr(value) if isinstance(value, str) else str(value)
        return f"{kind} ({text[:40]})" if kind != text else kind
    return kind


# ----- operations ---------------------------------------------------------------------------


class Operation:
    """An operation instance. Subclasses set `name`, `traits` and the operand/result counts."""

    name: ClassVar[str] = "builtin.unregistered"
    traits: ClassVar[frozenset[type[Trait]]] = frozenset()
    num_operands: ClassVar[int | None] = None  # None: variadic
    num_results: ClassVar[int | None] = 1  # None: variadic
    num_regions: ClassVar[int] = 0
    attribute_defs: ClassVar[dict[str, attr_def]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        defs: dict[str, attr_def] = {}
        for klass in reversed(cls.__mro__):
            for key, value in vars(klass).items():
                if isinstance(value, attr_def):
                    defs[key] = value
        cls.attribute_defs = defs

    def __init__(
        self,
        operands: Sequence[Value] = (),
        result_types: Sequence[TensorType] = (),
        attributes: dict[str, Any] | None = None,
        regions: Sequence[Region] = (),
        loc: Location | None = None,
    ) -> None:
        self._operands: list[Value] = []
        self.results: list[OpResult] = [OpResult(t, self, i) for i, t in enumerate(result_types)]
        self.attributes: dict[str, Any] = dict(attributes or {})
        self.regions: list[Region] = []
        self.parent: Block | None = None
        self.loc = loc
        for value in operands:
            self._append_operand(value)
        for region in regions:
            self.add_region(region)

    # ----- construction helpers -----------------------------------------------------------
    @classmethod
    def build(
        cls,
        operands: Sequence[Value] = (),
        attributes: dict[str, Any] | None = None,
        loc: Location | None = None,
        result_types: Sequence[TensorType] | None = None,
    ) -> Operation:
        """Create an op, inferring its result types unless they are given."""
        attrs = dict(attributes or {})
        if result_types is None:
            result_types = cls.infer_result_types([v.type for v in operands], attrs)
        return cls(operands, result_types, attrs, loc=loc)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], attributes: dict[str, Any]
    ) -> list[TensorType]:
        raise NotImplementedError(f"{cls.name} cannot infer its result types")

    # ----- operands -------------------------------------------------------------------------
    @property
    def operands(self) -> tuple[Value, ...]:
        return tuple(self._operands)

    def _append_operand(self, value: Value) -> None:
        value.uses.append(Use(self, len(self._operands)))
        self._operands.append(value)

    def set_operand(self, index: int, value: Value) -> None:
        old = self._operands[index]
        old.uses = [u for u in old.uses if not (u.op is self and u.index == index)]
        self._operands[index] = value
        value.uses.append(Use(self, index))

    def set_operands(self, values: Sequence[Value]) -> None:
        self.drop_operands()
        for value in values:
            self._append_operand(value)

    def drop_operands(self) -> None:
        for old in self._operands:
            old.uses = [u for u in old.uses if u.op is not self]
        self._operands = []

    # ----- results --------------------------------------------------------------------------
    @property
    def result(self) -> OpResult:
        if len(self.results) != 1:
            raise ValueError(f"{self.name} has {len(self.results)} results, not one")
        return self.results[0]

    # ----- regions --------------------------------------------------------------------------
    def add_region(self, region: Region) -> None:
        region.parent = self
        self.regions.append(region)

    @property
    def body(self) -> Block:
        """The single block of the first region (kernels, functions)."""
        return self.regions[0].block

    def walk(self) -> Iterator[Operation]:
        """This op and every op nested in its regions, in pre-order."""
        yield self
        for region in self.regions:
            for block in region.blocks:
                for op in list(block.ops):
                    yield from op.walk()

    # ----- queries --------------------------------------------------------------------------
    @classmethod
    def has_trait(cls, trait: type[Trait]) -> bool:
        return trait in cls.traits

    @property
    def is_pure(self) -> bool:
        return Pure in self.traits

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attributes.get(key, default)

    # ----- mutation -------------------------------------------------------------------------
    def erase(self) -> None:
        """Remove this op from its block; its results must have no uses left."""
        for result in self.results:
            if result.uses:
                raise VerifyError(f"erasing {self.name} whose result is still used", self)
        for op in list(self.walk())[1:]:
            op.drop_operands()
        self.drop_operands()
        if self.parent is not None:
            self.parent.remove(self)

    def replace_with(self, values: Sequence[Value]) -> None:
        """Replace every use of this op's results by `values`, then erase it."""
        if len(values) != len(self.results):
            raise ValueError(f"{self.name}: {len(values)} replacements for {len(self.results)}")
        for result, value in zip(self.results, values):
            result.replace_all_uses_with(value)
        self.erase()

    # ----- verification ---------------------------------------------------------------------
    def verify(self) -> None:
        """Structural checks common to all ops, then the op's own `verify_`."""
        if self.num_operands is not None and len(self._operands) != self.num_operands:
            raise VerifyError(
                f"{self.name} expects {self.num_operands} operands, got {len(self._operands)}",
                self,
            )
        if self.num_results is not None and len(self.results) != self.num_results:
            raise VerifyError(
                f"{self.name} expects {self.num_results} results, got {len(self.results)}", self
            )
        if len(self.regions) != self.num_regions:
            raise VerifyError(
                f"{self.name} expects {self.num_regions} regions, got {len(self.regions)}", self
            )
        for key, definition in self.attribute_defs.items():
            if key not in self.attributes:
                if definition.required:
                    raise VerifyError(f"{self.name} requires attribute '{key}'", self)
                continue
            problem = definition.problem(self.attributes[key])
            if problem is not None:
                raise VerifyError(f"{self.name}: attribute '{key}' {problem}", self)
        for key in self.attributes:
            if key not in self.attribute_defs:
                raise VerifyError(f"{self.name} has no attribute '{key}'", self)
        self.verify_()

    def verify_(self) -> None:
        """Op-specific checks. The default compares result types with the inferred ones."""
        try:
            expected = self.infer_result_types([v.type for v in self._operands], self.attributes)
        except NotImplementedError:
            return
        except VerifyError as error:
            raise VerifyError(str(error), self) from None
        actual = [r.type for r in self.results]
        if list(expected) != actual:
            raise VerifyError(
                f"{self.name}: result type {', '.join(map(str, actual))} does not match the "
                f"inferred {', '.join(map(str, expected))}",
                self,
            )

    def fold(self) -> list[Any] | None:
        """Constant-fold or simplify: return replacement Values, or None to leave it alone."""
        return None

    def __repr__(self) -> str:
        return f"<{self.name} at {self.loc}>" if self.loc else f"<{self.name}>"


# ----- blocks and regions -------------------------------------------------------------------


class Block:
    """An ordered list of operations with typed arguments."""

    def __init__(self, arg_types: Sequence[TensorType] = (), arg_names: Sequence[str | None] = ()):
        names = list(arg_names) + [None] * (len(arg_types) - len(arg_names))
        self.args: list[BlockArgument] = [
            BlockArgument(t, self, i, names[i]) for i, t in enumerate(arg_types)
        ]
        self.ops: list[Operation] = []
        self.parent: Region | None = None

    def append(self, op: Operation) -> Operation:
        op.parent = self
        self.ops.append(op)
        return op

    def insert(self, index: int, op: Operation) -> Operation:
        op.parent = self
        self.ops.insert(index, op)
        return op

    def insert_before(self, anchor: Operation, op: Operation) -> Operation:
        return self.insert(self.index_of(anchor), op)

    def index_of(self, op: Operation) -> int:
        try:
            return self.ops.index(op)  # ops compare by identity: a search at C speed
        except ValueError:
            raise ValueError(f"{op.name} is not in this block") from None

    def remove(self, op: Operation) -> None:
        self.ops.pop(self.index_of(op))
        op.parent = None

    @property
    def terminator(self) -> Operation | None:
        if self.ops and Terminator in self.ops[-1].traits:
            return self.ops[-1]
        return None

    @property
    def parent_op(self) -> Operation | None:
        return self.parent.parent if self.parent else None


class Region:
    def __init__(self, blocks: Sequence[Block] = ()) -> None:
        self.blocks: list[Block] = []
        self.parent: Operation | None = None
        for block in blocks:
            self.add_block(block)

    def add_block(self, block: Block) -> Block:
        block.parent = self
        self.blocks.append(block)
        return block

    @property
    def block(self) -> Block:
        if len(self.blocks) != 1:
            raise ValueError(f"region has {len(self.blocks)} blocks, not one")
        return self.blocks[0]


# ----- registry -----------------------------------------------------------------------------

OP_REGISTRY: dict[str, type[Operation]] = {}


def register_op(cls: type[Operation]) -> type[Operation]:
    if cls.name in OP_REGISTRY and OP_REGISTRY[cls.name] is not cls:
        raise ValueError(f"op {cls.name} registered twice")
    OP_REGISTRY[cls.name] = cls
    return cls


def lookup_op(name: str) -> type[Operation] | None:
    return OP_REGISTRY.get(name)

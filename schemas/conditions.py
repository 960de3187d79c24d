"""Conditions for ``instance_destroy``: built on the caller's side, carried by the codec.

``constraint(vm_state=equal_any("deleted", "error"))`` is a plain value: no database access
happens until the conductor applies it (api-compute.md §3.1).
"""

from __future__ import annotations

from typing import Any


class Condition:
    """Base of the three condition values; only these cross the wire."""

    kind = ""

    def to_wire(self) -> list[Any]:
        raise NotImplementedError

    @staticmethod
    def from_wire(data: list[Any]) -> Condition:
        if not isinstance(data, list) or not data:
            raise ValueError("malformed condition")
        kind, *rest = data
        if kind == "equal_any":
            return EqualityCondition(rest[0])
        if kind == "not_equal":
            return InequalityCondition(rest[0])
        if kind == "constraint":
            conditions = rest[0]
            if not isinstance(conditions, dict) or not all(
                    isinstance(c, (EqualityCondition, InequalityCondition))
                    for c in conditions.values()):
                raise ValueError("a constraint maps column names to equal_any/not_equal")
            return Constraint(conditions)
        raise ValueError(f"unknown condition kind {kind!r}")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_wire() == self.to_wire()

    def __hash__(self) -> int:
        return hash(repr(self.to_wire()))


class EqualityCondition(Condition):
    """The column equals at least one of the values (SQL ``IN``; NULL never matches)."""

    kind = "equal_any"

    def __init__(self, values: list[Any] | tuple[Any, ...]) -> None:
        self.values = list(values)

    def to_wire(self) -> list[Any]:
        return [self.kind, self.values]

    def __repr__(self) -> str:
        return f"equal_any({', '.join(map(repr, self.values))})"


class InequalityCondition(Condition):
    """The column differs from every one of the values (NULL never matches)."""

    kind = "not_equal"

    def __init__(self, values: list[Any] | tuple[Any, ...]) -> None:
        self.values = list(values)

    def to_wire(self) -> list[Any]:
        return [self.kind, self.values]

    def __repr__(self) -> str:
        return f"not_equal({', '.join(map(repr, self.values))})"


class Constraint(Condition):
    kind = "constraint"

    def __init__(self, conditions: dict[str, Condition]) -> None:
        self.conditions = dict(conditions)

    def to_wire(self) -> list[Any]:
        return [self.kind, self.conditions]

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.conditions.items())
        return f"constraint({inner})"


def constraint(**conditions: Condition) -> Constraint:
    for name, cond in conditions.items():
        if not isinstance(cond, (EqualityCondition, InequalityCondition)):
            raise TypeError(f"constraint {name}= takes equal_any(...) or not_equal(...), "
                            f"not {type(cond).__name__}")
    return Constraint(conditions)


def equal_any(*values: Any) -> EqualityCondition:
    return EqualityCondition(values)


def not_equal(*values: Any) -> InequalityCondition:
    return InequalityCondition(values)

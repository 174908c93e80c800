"""Walking a value against a botocore shape: the constraints ParamValidator leaves out, and full
output checks.

Used by :mod:`genobatch.api.model` (``input_problems`` and ``check_output``); see that module's
table for which constraints botocore checks and which are checked here.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Sized
from datetime import datetime
from typing import Any

from botocore.model import Shape

_MAX_MESSAGE = 512  # one problem's text; the offending value is echoed and may be huge


def clip(message: str) -> str:
    """Bound one message's length so a megabyte parameter is not echoed back whole."""
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."


# Integer is 32-bit and Long 64-bit in the model's type system; Python ints are unbounded, and an
# out-of-range value would otherwise surface as an overflow in the store, not a 400.
_INT_BOUNDS = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_NUMERIC_TYPES = frozenset({"integer", "long", "float", "double"})

# Python types each shape type accepts. Timestamps: the wire form is epoch seconds (a number) or
# an ISO-8601 string, and boto3 hands back a datetime. The Batch model has neither timestamps nor
# blobs (times are Long epoch milliseconds), but the checker stays complete.
_VALID_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "float": (float, int),
    "double": (float, int),
    "boolean": (bool,),
    "structure": (dict,),
    "map": (dict,),
    "list": (list, tuple),
    "timestamp": (int, float, str, datetime),
    "blob": (bytes, bytearray, str),
}


@functools.cache
def _pattern(pattern: str) -> re.Pattern[str]:
    """Compile a model ``pattern`` once. Smithy patterns are unanchored (ECMA-262 ``search``)."""
    return re.compile(pattern)


def _show(value: Any) -> str:
    """A value for a message, cut short: messages echo input and must stay bounded."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 64 else text[:61] + "..."


def _join(parent: str, member: str) -> str:
    """A dotted member path in ParamValidator's naming (``arrayProperties.size``)."""
    return f"{parent}.{member}" if parent else member


class ShapeChecker:
    """Walk a value against a shape and collect problems.

    ``full=True`` checks everything (output checks): nulls, types, required and unknown members,
    and every constraint. ``full=False`` checks only what ParamValidator leaves out (input
    checks): it still walks types to know where to descend, but reports a type only for the
    bool-as-number case ParamValidator accepts, and reports constraints only where ParamValidator
    does not already (so no problem is listed twice).
    """

    def __init__(self, *, full: bool, root: str, exempt_required: Iterable[tuple[str, str]] = ()) -> None:
        self.full = full
        self.root = root  # how messages name the top level ("input", as ParamValidator does)
        self.exempt_required = frozenset(exempt_required)
        self.problems: list[str] = []

    def _add(self, message: str) -> None:
        self.problems.append(clip(message))

    def _where(self, name: str) -> str:
        return name or self.root

    def _constraint(self, value: Any, name: str, rule: str) -> None:
        # AWS's wording for constraint failures, which names the member.
        self._add(f"Value '{_show(value)}' at '{self._where(name)}' failed to satisfy constraint: {rule}")

    def _type_ok(self, value: Any, shape: Shape, name: str) -> bool:
        """Whether ``value`` has the Python type the shape wants; report it if the mode says so."""
        type_name = shape.type_name
        valid = _VALID_TYPES.get(type_name)
        if valid is None:  # pragma: no cover - no other shape types exist
            return True
        # bool is an int subclass, so it must be excluded explicitly everywhere but boolean.
        is_bool = isinstance(value, bool)
        ok = isinstance(value, valid) and (type_name == "boolean" or not is_bool)
        # In input mode ParamValidator has reported every wrong type but bool-as-number.
        if not ok and (self.full or (is_bool and type_name in _NUMERIC_TYPES)):
            self._add(
                f"Invalid type for parameter {self._where(name)}, value: {_show(value)}, "
                f"type: {type(value)}, valid types: {', '.join(str(t) for t in valid)}"
            )
        return ok

    def check(self, value: Any, shape: Shape, name: str) -> None:
        """Check ``value`` (found at member path ``name``) against ``shape``."""
        if value is None:
            # AWS omits absent members rather than sending null; in input mode ParamValidator
            # has already reported the null (nulls in structures were dropped before).
            if self.full:
                self._add(f"Null value for parameter {self._where(name)}: absent members must be omitted")
            return
        if shape.type_name == "structure" and getattr(shape, "is_document_type", False):
            return  # a document is any JSON value
        if not self._type_ok(value, shape, name):
            return
        type_name = shape.type_name
        if type_name == "structure":
            self._check_structure(value, shape, name)
        elif type_name == "list":
            # Input: ParamValidator checked min. Output: an empty list is how AWS says "none"
            # even where the model puts min on the shape, so min is not checked there either.
            self._check_length(value, shape, name, min_done=True)
            for i, item in enumerate(value):
                self.check(item, shape.member, f"{name}[{i}]")
        elif type_name == "map":
            # A map's min is not enforced, in input or output: the only map with one is
            # TagrisTagsMap (min 1), yet real clients send ``"tags": {}`` (the Snakemake AWS
            # Batch plugin registers every definition so) and AWS accepts it, and
            # ListTagsForResource answers ``{"tags": {}}`` for an untagged resource.
            self._check_length(value, shape, name, min_done=True)
            for key, item in value.items():
                self.check(key, shape.key, f"{name} (key: {_show(key)})")
                self.check(item, shape.value, _join(name, str(key)))
        elif type_name == "string":
            self._check_string(value, shape, name)
        elif type_name in ("integer", "long", "float", "double"):
            self._check_number(value, shape, name)

    def _check_structure(self, value: dict[str, Any], shape: Shape, name: str) -> None:
        members = shape.members
        if self.full:
            for required in shape.metadata.get("required", ()):
                if required not in value and (shape.name, required) not in self.exempt_required:
                    self._add(f'Missing required parameter in {self._where(name)}: "{required}"')
            for key in value:
                if key not in members:
                    self._add(
                        f'Unknown parameter in {self._where(name)}: "{_show(key)}", '
                        f"must be one of: {', '.join(members)}"
                    )
        for key, item in value.items():
            if key in members:
                self.check(item, members[key], _join(name, key))

    def _check_length(self, value: Sized, shape: Shape, name: str, *, min_done: bool) -> None:
        """Length bounds of a string, list or map (``min_done``: ParamValidator checked min)."""
        meta = shape.metadata
        if "min" in meta and not min_done and len(value) < meta["min"]:
            self._constraint(value, name, f"Member must have length greater than or equal to {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            self._constraint(value, name, f"Member must have length less than or equal to {meta['max']}")

    def _check_string(self, value: str, shape: Shape, name: str) -> None:
        self._check_length(value, shape, name, min_done=not self.full)
        enum = shape.metadata.get("enum")
        if enum and value not in enum:
            self._constraint(value, name, f"Member must satisfy enum value set: [{', '.join(enum)}]")
        pattern = shape.metadata.get("pattern")
        if pattern and not _pattern(pattern).search(value):
            self._constraint(value, name, f"Member must satisfy regular expression pattern: {pattern}")

    def _check_number(self, value: float, shape: Shape, name: str) -> None:
        meta = shape.metadata
        if isinstance(value, float) and not math.isfinite(value):
            self._constraint(value, name, "Member must be a finite number")
            return
        # ParamValidator checks min for numbers itself.
        if "min" in meta and self.full and value < meta["min"]:
            self._constraint(value, name, f"Member must have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            self._constraint(value, name, f"Member must have value less than or equal to {meta['max']}")
        bounds = _INT_BOUNDS.get(shape.type_name)
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            self._constraint(value, name, f"Member must have value between {bounds[0]} and {bounds[1]}")

"""The ``States.*`` intrinsic functions of JSONPath states (developer guide, "Intrinsic functions").

An intrinsic is the value of a ``.$`` field, e.g. ``"States.Format('Hello, {}', $.name)"``.
Arguments are string literals in single quotes (``\\'`` ``\\{`` ``\\}`` ``\\\\`` escapes), numbers,
``true``/``false``/``null``, paths (``$.x``, ``$$.Execution.Id``, ``$var``) and nested intrinsic
calls. ``States.UUID`` and ``States.MathRandom`` (without a seed argument) draw from the
execution's seed (``PathContext.random``) so that a replay produces the same values.
Failures raise States.IntrinsicFailure naming the function and the problem.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import uuid
from typing import Any

from genobatch.workflow import errors
from genobatch.workflow.errors import StatesError
from genobatch.workflow.paths import PathContext, select

MAX_ARRAY_RANGE = 1000
MAX_BASE64_INPUT = 10_000
HASH_ALGORITHMS = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


class _Call:
    def __init__(self, name: str, args: list):
        self.name = name
        self.args = args


class _Path:
    def __init__(self, path: str):
        self.path = path


class _String:
    """A string literal; ``raw`` keeps ``\\{`` and ``\\}`` so States.Format can tell them apart."""

    def __init__(self, raw: str):
        self.raw = raw

    @property
    def value(self) -> str:
        return self.raw.replace("\\{", "{").replace("\\}", "}")


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> _Call:
    """Parse an intrinsic function call (cached; the result is never mutated); raises ValueError
    naming the problem and position."""
    parser = _Parser(text)
    call = parser.call()
    parser.skip_space()
    if parser.pos != len(text):
        raise ValueError(f"unexpected {text[parser.pos :]!r} after the intrinsic function call in {text!r}")
    return call


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def call(self) -> _Call:
        self.skip_space()
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum() or self.text[self.pos] in "._"):
            self.pos += 1
        name = self.text[start : self.pos]
        if not name.startswith("States.") or name not in FUNCTIONS:
            raise ValueError(f"unknown intrinsic function {name!r} in {self.text!r}")
        self.skip_space()
        if self.pos >= len(self.text) or self.text[self.pos] != "(":
            raise ValueError(f"expected '(' after {name} in {self.text!r}")
        self.pos += 1
        args: list = []
        self.skip_space()
        if self.pos < len(self.text) and self.text[self.pos] == ")":
            self.pos += 1
            return _Call(name, args)
        while True:
            args.append(self.argument())
            self.skip_space()
            if self.pos >= len(self.text):
                raise ValueError(f"missing ')' in {self.text!r}")
            if self.text[self.pos] == ",":
                self.pos += 1
                continue
            if self.text[self.pos] == ")":
                self.pos += 1
                return _Call(name, args)
            raise ValueError(f"unexpected {self.text[self.pos]!r} at position {self.pos} in {self.text!r}")

    def argument(self):
        self.skip_space()
        if self.pos >= len(self.text):
            raise ValueError(f"missing argument in {self.text!r}")
        char = self.text[self.pos]
        if char == "'":
            return self.string()
        if char == "$":
            return self.path()
        if self.text.startswith("States.", self.pos):
            return self.call()
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in ",)" and not self.text[self.pos].isspace():
            self.pos += 1
        token = self.text[start : self.pos]
        if token in ("true", "false", "null"):
            return json.loads(token)
        try:
            return json.loads(token)
        except json.JSONDecodeError:
            raise ValueError(f"invalid argument {token!r} in {self.text!r}") from None

    def string(self) -> _String:
        self.pos += 1
        out = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and self.pos + 1 < len(self.text):
                following = self.text[self.pos + 1]
                out.append("\\" + following if following in "{}" else following)
                self.pos += 2
                continue
            if char == "'":
                self.pos += 1
                return _String("".join(out))
            out.append(char)
            self.pos += 1
        raise ValueError(f"unterminated string in {self.text!r}")

    def path(self) -> _Path:
        start = self.pos
        depth = 0
        quote = None
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if quote:
                if char == quote:
                    quote = None
            elif char in "'\"":
                quote = char
            elif char in "[(":
                depth += 1
            elif char in "])":
                if depth == 0:
                    break
                depth -= 1
            elif char == "," and depth == 0:
                break
            self.pos += 1
        return _Path(self.text[start : self.pos].strip())


def evaluate(text: str, ctx: PathContext) -> Any:
    """Evaluate the intrinsic call ``text`` against ``ctx``."""
    try:
        call = parse(text)
    except ValueError as exc:
        raise StatesError(errors.INTRINSIC_FAILURE, str(exc)) from exc
    return _evaluate_call(call, ctx, text)


def _evaluate_call(call: _Call, ctx: PathContext, text: str) -> Any:
    if call.name == "States.Format":
        if not call.args or not isinstance(call.args[0], _String):
            raise StatesError(errors.INTRINSIC_FAILURE, "States.Format needs a string literal template first")
        values = [_value(arg, ctx, text) for arg in call.args[1:]]
        return _format(call.args[0].raw, values)
    values = [_value(arg, ctx, text) for arg in call.args]
    try:
        return FUNCTIONS[call.name](values, ctx, call.name)
    except StatesError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, OverflowError) as exc:
        raise StatesError(errors.INTRINSIC_FAILURE, f"{call.name}: {exc}") from exc


def _value(arg: Any, ctx: PathContext, text: str) -> Any:
    if isinstance(arg, _Call):
        return _evaluate_call(arg, ctx, text)
    if isinstance(arg, _Path):
        return select(arg.path, ctx, error=errors.INTRINSIC_FAILURE, what="JSONPath")
    if isinstance(arg, _String):
        return arg.value
    return arg


def _format(template: str, values: list) -> str:
    out = []
    used = 0
    index = 0
    while index < len(template):
        char = template[index]
        if char == "\\" and index + 1 < len(template) and template[index + 1] in "{}":
            out.append(template[index + 1])
            index += 2
            continue
        if template.startswith("{}", index):
            if used >= len(values):
                raise StatesError(errors.INTRINSIC_FAILURE, "States.Format: more {} placeholders than arguments")
            out.append(_as_text(values[used]))
            used += 1
            index += 2
            continue
        out.append(char)
        index += 1
    if used != len(values):
        raise StatesError(
            errors.INTRINSIC_FAILURE, f"States.Format: {len(values)} arguments for {used} {{}} placeholders"
        )
    return "".join(out)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _need(condition: bool, name: str, problem: str) -> None:
    if not condition:
        raise StatesError(errors.INTRINSIC_FAILURE, f"{name}: {problem}")


def _count(values: list, expected: int | tuple, name: str) -> None:
    allowed = expected if isinstance(expected, tuple) else (expected,)
    _need(len(values) in allowed, name, f"expects {' or '.join(map(str, allowed))} arguments, got {len(values)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) or (isinstance(value, float) and value.is_integer())


def _string_to_json(values, ctx, name):
    _count(values, 1, name)
    _need(isinstance(values[0], str), name, "the argument must be a string")
    return json.loads(values[0])


def _json_to_string(values, ctx, name):
    _count(values, 1, name)
    return json.dumps(values[0], separators=(",", ":"))


def _array_partition(values, ctx, name):
    _count(values, 2, name)
    array, size = values
    _need(isinstance(array, list), name, "the first argument must be an array")
    _need(_is_int(size) and size > 0, name, "the chunk size must be a positive integer")
    size = int(size)
    return [array[i : i + size] for i in range(0, len(array), size)]


def _array_contains(values, ctx, name):
    _count(values, 2, name)
    _need(isinstance(values[0], list), name, "the first argument must be an array")
    return values[1] in values[0]


def _array_range(values, ctx, name):
    _count(values, 3, name)
    _need(all(_is_int(v) for v in values), name, "start, end and step must be integers")
    start, end, step = (int(v) for v in values)
    _need(step != 0, name, "the step must not be 0")
    result = list(range(start, end + (1 if step > 0 else -1), step))
    _need(len(result) <= MAX_ARRAY_RANGE, name, f"the range has more than {MAX_ARRAY_RANGE} items")
    return result


def _array_get_item(values, ctx, name):
    _count(values, 2, name)
    array, index = values
    _need(isinstance(array, list), name, "the first argument must be an array")
    _need(_is_int(index) and 0 <= index < len(array), name, f"index {index} is out of range")
    return array[int(index)]


def _array_length(values, ctx, name):
    _count(values, 1, name)
    _need(isinstance(values[0], list), name, "the argument must be an array")
    return len(values[0])


def _array_unique(values, ctx, name):
    _count(values, 1, name)
    _need(isinstance(values[0], list), name, "the argument must be an array")
    unique: list = []
    for item in values[0]:
        if item not in unique:
            unique.append(item)
    return unique


def _base64_encode(values, ctx, name):
    _count(values, 1, name)
    _need(isinstance(values[0], str), name, "the argument must be a string")
    _need(len(values[0]) <= MAX_BASE64_INPUT, name, f"the input has more than {MAX_BASE64_INPUT} characters")
    return base64.b64encode(values[0].encode()).decode()


def _base64_decode(values, ctx, name):
    _count(values, 1, name)
    _need(isinstance(values[0], str), name, "the argument must be a string")
    _need(len(values[0]) <= MAX_BASE64_INPUT, name, f"the input has more than {MAX_BASE64_INPUT} characters")
    return base64.b64decode(values[0], validate=True).decode()


def _hash(values, ctx, name):
    _count(values, 2, name)
    data, algorithm = values
    _need(algorithm in HASH_ALGORITHMS, name, f"the algorithm must be one of {sorted(HASH_ALGORITHMS)}")
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return hashlib.new(HASH_ALGORITHMS[algorithm], text.encode()).hexdigest()


def _json_merge(values, ctx, name):
    _count(values, 3, name)
    left, right, deep = values
    _need(isinstance(left, dict) and isinstance(right, dict), name, "the first two arguments must be objects")
    _need(deep is False, name, "only shallow merge is supported: the third argument must be false")
    return {**left, **right}


def _math_random(values, ctx, name):
    _count(values, (2, 3), name)
    _need(all(_is_int(v) for v in values), name, "start, end and seed must be integers")
    start, end = int(values[0]), int(values[1])
    _need(start < end, name, "start must be less than end")
    seeded = len(values) == 3
    fraction = errors.seeded_fraction(int(values[2]), "States.MathRandom") if seeded else _draw(ctx, name)
    return start + int(fraction * (end - start))


def _math_add(values, ctx, name):
    _count(values, 2, name)
    _need(all(_is_int(v) for v in values), name, "both arguments must be integers")
    return int(values[0]) + int(values[1])


def _string_split(values, ctx, name):
    _count(values, 2, name)
    text, delimiters = values
    _need(isinstance(text, str) and isinstance(delimiters, str), name, "both arguments must be strings")
    parts = [text]
    for delimiter in delimiters:
        parts = [piece for part in parts for piece in part.split(delimiter)]
    return [part for part in parts if part != ""]


def _uuid(values, ctx, name):
    _count(values, 0, name)
    fraction_bits = [int(_draw(ctx, name) * 2**64) for _ in range(2)]
    return str(uuid.UUID(int=(fraction_bits[0] << 64) | fraction_bits[1], version=4))


def _draw(ctx: PathContext, name: str) -> float:
    _need(ctx.random is not None, name, "no random source in this context")
    return ctx.random(name)


def _array(values, ctx, name):
    return list(values)


FUNCTIONS = {
    "States.Format": None,  # handled in _evaluate_call: it needs its template unescaped
    "States.StringToJson": _string_to_json,
    "States.JsonToString": _json_to_string,
    "States.Array": _array,
    "States.ArrayPartition": _array_partition,
    "States.ArrayContains": _array_contains,
    "States.ArrayRange": _array_range,
    "States.ArrayGetItem": _array_get_item,
    "States.ArrayLength": _array_length,
    "States.ArrayUnique": _array_unique,
    "States.Base64Encode": _base64_encode,
    "States.Base64Decode": _base64_decode,
    "States.Hash": _hash,
    "States.JsonMerge": _json_merge,
    "States.MathRandom": _math_random,
    "States.MathAdd": _math_add,
    "States.StringSplit": _string_split,
    "States.UUID": _uuid,
}

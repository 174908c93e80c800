"""JSONata for states with ``QueryLanguage: JSONata`` (developer guide, "Transforming data with
JSONata in Step Functions").

Any string value of the form ``{% expression %}`` in Arguments, Output, Assign, Items,
ItemSelector, Condition, Seconds, Timestamp, Error, Cause ... is a JSONata expression, evaluated by
``jsonata-python`` with ``$states`` (``input``, ``context``, and where AWS defines them ``result``
and ``errorOutput``) and the workflow variables bound. AWS's extra functions are added here:
``$partition``, ``$range``, ``$hash``, ``$random``, ``$uuid``, ``$parse``. ``$random``/``$uuid``
draw from the execution's seed, and ``$now``/``$millis`` return the core's clock, so that a replay
gives the same answers. A failing expression raises States.QueryEvaluationError.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

import jsonata

from genobatch.workflow import errors
from genobatch.workflow.errors import StatesError

HASH_ALGORITHMS = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def is_expression(value: Any) -> bool:
    """Whether ``value`` is a ``{% ... %}`` JSONata expression string."""
    return isinstance(value, str) and value.strip().startswith("{%") and value.strip().endswith("%}")


def expression_text(value: str) -> str:
    """The expression inside ``{% ... %}``."""
    return value.strip()[2:-2].strip()


@functools.lru_cache(maxsize=4096)
def compile_expression(text: str) -> jsonata.Jsonata:
    """The compiled expression (cached: compiling is the slow part); ValueError names the problem."""
    try:
        return jsonata.Jsonata(text)
    except Exception as exc:
        raise ValueError(f"invalid JSONata expression {text!r}: {exc}") from exc


class JsonataContext:
    """The bindings of one evaluation: ``$states`` and the variables, the core's clock and seeded
    random source (``random(key) -> [0, 1)``)."""

    def __init__(self, states: dict, variables: dict[str, Any], now: float, random: Callable[[str], float]):
        self.states = states
        self.variables = variables
        self.now = now
        self.random = random


def evaluate(text: str, ctx: JsonataContext) -> Any:
    """Evaluate one expression (without the ``{% %}``)."""
    try:
        expression = compile_expression(text)
    except ValueError as exc:
        raise StatesError(errors.QUERY_EVALUATION_ERROR, str(exc)) from exc
    bindings = {**ctx.variables, "states": ctx.states, **_aws_functions(ctx)}
    try:
        result = expression.evaluate(None, bindings)
    except StatesError:
        raise
    except Exception as exc:
        raise StatesError(errors.QUERY_EVALUATION_ERROR, f"An error occurred while evaluating {text!r}: {exc}") from exc
    return _plain(result)


def resolve(template: Any, ctx: JsonataContext) -> Any:
    """Evaluate every ``{% %}`` string in ``template`` (objects and arrays walked); other values
    are kept as they are."""
    if is_expression(template):
        return evaluate(expression_text(template), ctx)
    if isinstance(template, dict):
        return {key: resolve(value, ctx) for key, value in template.items()}
    if isinstance(template, list):
        return [resolve(item, ctx) for item in template]
    return template


def _plain(value: Any) -> Any:
    """jsonata-python returns its own sequence type for arrays; the core keeps plain JSON."""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    # e.g. "{% $sum %}" evaluates to a function: not a JSON value a state can pass on
    raise StatesError(errors.QUERY_EVALUATION_ERROR, f"The expression returned a {type(value).__name__}, not JSON")


def _aws_functions(ctx: JsonataContext) -> dict[str, Any]:
    lam = jsonata.Jsonata.JLambda
    draws = iter(range(1_000_000))

    def draw() -> float:
        return ctx.random(f"jsonata:{next(draws)}")

    def partition(array, size):
        if not isinstance(array, list) or not isinstance(size, int | float) or int(size) <= 0:
            raise StatesError(errors.QUERY_EVALUATION_ERROR, "$partition(array, size): size must be a positive number")
        size = int(size)
        return [list(array[i : i + size]) for i in range(0, len(array), size)]

    def range_(start, end, step):
        start, end, step = int(start), int(end), int(step)
        if step == 0:
            raise StatesError(errors.QUERY_EVALUATION_ERROR, "$range(start, end, step): step must not be 0")
        return list(range(start, end + (1 if step > 0 else -1), step))

    def hash_(data, algorithm="SHA-256"):
        if algorithm not in HASH_ALGORITHMS:
            problem = f"$hash: algorithm must be one of {sorted(HASH_ALGORITHMS)}"
            raise StatesError(errors.QUERY_EVALUATION_ERROR, problem)
        text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        return hashlib.new(HASH_ALGORITHMS[algorithm], text.encode()).hexdigest()

    def random(seed=None):
        if seed is not None:
            return errors.seeded_fraction(int(seed), "$random")
        return draw()

    def uuid_():
        high, low = int(draw() * 2**64), int(draw() * 2**64)
        return str(uuid.UUID(int=(high << 64) | low, version=4))

    def parse(text):
        try:
            return json.loads(text)
        except (TypeError, json.JSONDecodeError) as exc:
            raise StatesError(errors.QUERY_EVALUATION_ERROR, f"$parse: {exc}") from exc

    def now(*_args):
        return (
            datetime.datetime.fromtimestamp(ctx.now, datetime.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )

    def millis():
        return int(ctx.now * 1000)

    return {
        "partition": lam(partition),
        "range": lam(range_),
        "hash": lam(hash_),
        "random": lam(random),
        "uuid": lam(uuid_),
        "parse": lam(parse),
        "now": lam(now),
        "millis": lam(millis),
    }

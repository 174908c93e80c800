"""What each state type computes, as pure functions of (state, input, scope).

The interpreter decides *when* things happen (events, frames, retries); this module decides
*what* a state produces: its effective input, a Task's parameters, a Choice's next state, a Wait's
deadline, a Fail's error, a Map's items, and the output processing after a result
(ResultSelector -> ResultPath -> OutputPath for JSONPath; Output and Assign for JSONata).
Errors raise ``StatesError`` with AWS's error names.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any

from genobatch.workflow import errors, jsonata_eval, paths
from genobatch.workflow.definition import CHOICE_OPERATORS, JSONATA
from genobatch.workflow.errors import StatesError


def iso(timestamp: float) -> str:
    """An epoch time as the ISO 8601 string AWS puts in the context object."""
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(value: Any) -> float | None:
    """An RFC 3339 timestamp as epoch seconds, or None when ``value`` is not one."""
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.timestamp()


@dataclass
class Scope:
    """Everything an evaluation in one state may see: the context object, the frame's variables,
    the core's clock and a seeded random source."""

    context: dict
    variables: dict
    now: float
    random: Any  # Callable[[str], float]
    language: str

    def path_ctx(self, data: Any) -> paths.PathContext:
        return paths.PathContext(data, self.context, self.variables, self.random)

    def jsonata(self, **states: Any) -> jsonata_eval.JsonataContext:
        return jsonata_eval.JsonataContext({**states, "context": self.context}, self.variables, self.now, self.random)

    @property
    def is_jsonata(self) -> bool:
        return self.language == JSONATA


def effective_input(state: dict, raw_input: Any, scope: Scope) -> Any:
    """InputPath applied (JSONPath); JSONata states see their raw input as ``$states.input``."""
    if scope.is_jsonata:
        return raw_input
    return paths.input_path(state.get("InputPath"), scope.path_ctx(raw_input), absent="InputPath" not in state)


def task_parameters(state: dict, raw_input: Any, scope: Scope, template_key: str = "Parameters") -> Any:
    """What a Task sends (or a Parallel's branches receive): Parameters/Arguments resolved."""
    if scope.is_jsonata:
        if "Arguments" not in state:
            return raw_input
        return jsonata_eval.resolve(state["Arguments"], scope.jsonata(input=raw_input))
    data = effective_input(state, raw_input, scope)
    if template_key not in state:
        return data
    return paths.payload(state[template_key], scope.path_ctx(data), field_name=template_key)


def pass_result(state: dict, raw_input: Any, scope: Scope) -> Any:
    """A Pass state's result (before ResultPath): Result, else Parameters, else its input."""
    if scope.is_jsonata:
        return raw_input
    if "Result" in state:
        return state["Result"]
    return task_parameters(state, raw_input, scope)


def seconds_setting(state: dict, key: str, raw_input: Any, scope: Scope) -> float | None:
    """TimeoutSeconds / HeartbeatSeconds: a number, a ``...Path`` (JSONPath) or a JSONata expression."""
    value = state.get(key)
    if jsonata_eval.is_expression(value):
        value = jsonata_eval.evaluate(jsonata_eval.expression_text(value), scope.jsonata(input=raw_input))
    elif value is None and f"{key}Path" in state:
        value = paths.select(state[f"{key}Path"], scope.path_ctx(effective_input(state, raw_input, scope)))
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise StatesError(errors.RUNTIME, f"{key} must be a positive number, got {value!r}")
    return float(value)


def finish(state: dict, raw_input: Any, result: Any, scope: Scope) -> tuple[Any, dict]:
    """Output processing after a state's work: (state output, variables to assign)."""
    if scope.is_jsonata:
        ctx = scope.jsonata(input=raw_input, result=result)
        output = jsonata_eval.resolve(state["Output"], ctx) if "Output" in state else result
        assigned = jsonata_eval.resolve(state["Assign"], ctx) if "Assign" in state else {}
        return output, assigned
    if "ResultSelector" in state:
        result = paths.payload(state["ResultSelector"], scope.path_ctx(result), field_name="ResultSelector")
    assigned = paths.payload(state["Assign"], scope.path_ctx(result), field_name="Assign") if "Assign" in state else {}
    combined = paths.result_path(state.get("ResultPath"), raw_input, result, absent="ResultPath" not in state)
    output = paths.input_path(state.get("OutputPath"), scope.path_ctx(combined), absent="OutputPath" not in state)
    return output, assigned


def pass_through(state: dict, raw_input: Any, scope: Scope) -> tuple[Any, dict]:
    """Output of states that only filter their input (Choice, Wait, Succeed)."""
    if scope.is_jsonata:
        ctx = scope.jsonata(input=raw_input)
        output = jsonata_eval.resolve(state["Output"], ctx) if "Output" in state else raw_input
        assigned = jsonata_eval.resolve(state["Assign"], ctx) if "Assign" in state else {}
        return output, assigned
    data = effective_input(state, raw_input, scope)
    assigned = paths.payload(state["Assign"], scope.path_ctx(data), field_name="Assign") if "Assign" in state else {}
    output = paths.input_path(state.get("OutputPath"), scope.path_ctx(data), absent="OutputPath" not in state)
    return output, assigned


def caught(catcher: dict, raw_input: Any, error: str, cause: str, scope: Scope) -> tuple[Any, dict]:
    """The output and assignments of a Catch that matched."""
    error_output = {"Error": error, "Cause": cause}
    if scope.is_jsonata:
        ctx = scope.jsonata(input=raw_input, errorOutput=error_output)
        output = jsonata_eval.resolve(catcher["Output"], ctx) if "Output" in catcher else error_output
        assigned = jsonata_eval.resolve(catcher["Assign"], ctx) if "Assign" in catcher else {}
        return output, assigned
    ctx = scope.path_ctx(error_output)
    assigned = paths.payload(catcher["Assign"], ctx, field_name="Assign") if "Assign" in catcher else {}
    path = catcher.get("ResultPath")
    return paths.result_path(path, raw_input, error_output, absent="ResultPath" not in catcher), assigned


def fail_error(state: dict, raw_input: Any, scope: Scope) -> tuple[str, str]:
    """A Fail state's (error, cause)."""
    if scope.is_jsonata:
        ctx = scope.jsonata(input=raw_input)
        error = jsonata_eval.resolve(state.get("Error"), ctx)
        cause = jsonata_eval.resolve(state.get("Cause"), ctx)
    else:
        ctx = scope.path_ctx(raw_input)
        error = paths.select(state["ErrorPath"], ctx) if "ErrorPath" in state else state.get("Error")
        cause = paths.select(state["CausePath"], ctx) if "CausePath" in state else state.get("Cause")
    return ("" if error is None else str(error)), ("" if cause is None else str(cause))


def wait_until(state: dict, raw_input: Any, scope: Scope) -> float:
    """When a Wait state ends, on the core's clock."""
    if scope.is_jsonata:
        ctx = scope.jsonata(input=raw_input)
        seconds = jsonata_eval.resolve(state.get("Seconds"), ctx)
        timestamp = jsonata_eval.resolve(state.get("Timestamp"), ctx)
    else:
        data = effective_input(state, raw_input, scope)
        seconds = paths.select(state["SecondsPath"], scope.path_ctx(data)) if "SecondsPath" in state else None
        seconds = state.get("Seconds", seconds)
        timestamp = paths.select(state["TimestampPath"], scope.path_ctx(data)) if "TimestampPath" in state else None
        timestamp = state.get("Timestamp", timestamp)
    if seconds is not None:
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise StatesError(errors.RUNTIME, f"Wait Seconds must be a non-negative number, got {seconds!r}")
        return scope.now + float(seconds)
    moment = parse_timestamp(timestamp)
    if moment is None:
        raise StatesError(errors.RUNTIME, f"Wait Timestamp must be an RFC 3339 timestamp, got {timestamp!r}")
    return max(moment, scope.now)


def choose(state: dict, raw_input: Any, scope: Scope) -> tuple[str, Any, dict]:
    """A Choice state's (next state, output, assigned variables)."""
    if scope.is_jsonata:
        ctx = scope.jsonata(input=raw_input)
        for rule in state["Choices"]:
            condition = jsonata_eval.resolve(rule["Condition"], ctx)
            if not isinstance(condition, bool):
                problem = f"The Condition {rule['Condition']!r} returned {condition!r}, not a boolean"
                raise StatesError(errors.QUERY_EVALUATION_ERROR, problem)
            if condition:
                return _chosen(state, rule, raw_input, scope)
    else:
        data = effective_input(state, raw_input, scope)
        for rule in state["Choices"]:
            if _rule_matches(rule, scope.path_ctx(data)):
                return _chosen(state, rule, raw_input, scope)
    if "Default" in state:
        output, assigned = pass_through(state, raw_input, scope)
        return state["Default"], output, assigned
    raise StatesError(errors.NO_CHOICE_MATCHED, "No Matches!")


def _chosen(state: dict, rule: dict, raw_input: Any, scope: Scope) -> tuple[str, Any, dict]:
    merged = dict(state)
    for key in ("Output", "Assign"):
        if key in rule:
            merged[key] = rule[key]
    output, assigned = pass_through(merged, raw_input, scope)
    return rule["Next"], output, assigned


def _rule_matches(rule: dict, ctx: paths.PathContext) -> bool:
    if "And" in rule:
        return all(_rule_matches(inner, ctx) for inner in rule["And"])
    if "Or" in rule:
        return any(_rule_matches(inner, ctx) for inner in rule["Or"])
    if "Not" in rule:
        return not _rule_matches(rule["Not"], ctx)
    operator = next(key for key in rule if key in CHOICE_OPERATORS)
    expected = rule[operator]
    try:
        value = paths.select(rule["Variable"], ctx)
        present = True
    except StatesError:
        value, present = None, False
    if operator == "IsPresent":
        return present == expected
    if not present:
        raise StatesError(
            errors.RUNTIME,
            f"Invalid path '{rule['Variable']}': The choice state's condition path references an invalid value.",
        )
    if operator.startswith("Is"):
        return _type_test(operator, value) == expected
    if operator.endswith("Path"):
        operator = operator[: -len("Path")]
        expected = paths.select(expected, ctx)
    return _compare(operator, value, expected)


def _type_test(operator: str, value: Any) -> bool:
    if operator == "IsNull":
        return value is None
    if operator == "IsNumeric":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if operator == "IsString":
        return isinstance(value, str)
    if operator == "IsBoolean":
        return isinstance(value, bool)
    return parse_timestamp(value) is not None  # IsTimestamp


_ORDER = {
    "Equals": lambda a, b: a == b,
    "LessThan": lambda a, b: a < b,
    "GreaterThan": lambda a, b: a > b,
    "LessThanEquals": lambda a, b: a <= b,
    "GreaterThanEquals": lambda a, b: a >= b,
}


def _compare(operator: str, value: Any, expected: Any) -> bool:
    if operator == "BooleanEquals":
        return isinstance(value, bool) and isinstance(expected, bool) and value == expected
    if operator == "StringMatches":
        return isinstance(value, str) and isinstance(expected, str) and _wildcard(expected).fullmatch(value) is not None
    for kind in ("String", "Numeric", "Timestamp"):
        if operator.startswith(kind):
            relation = _ORDER[operator[len(kind) :]]
            if kind == "String":
                return isinstance(value, str) and isinstance(expected, str) and relation(value, expected)
            if kind == "Numeric":
                numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (value, expected))
                return numbers and relation(value, expected)
            left, right = parse_timestamp(value), parse_timestamp(expected)
            return left is not None and right is not None and relation(left, right)
    raise StatesError(errors.RUNTIME, f"Unknown comparison operator {operator}")


def _wildcard(pattern: str) -> re.Pattern:
    """StringMatches: ``*`` matches any run of characters; ``\\*`` and ``\\\\`` are literal."""
    pieces = re.split(r"(\\\\|\\\*|\*)", pattern)
    regex = "".join(
        ".*" if piece == "*" else re.escape(piece[1]) if piece in ("\\*", "\\\\") else re.escape(piece)
        for piece in pieces
    )
    return re.compile(regex, re.DOTALL)


def map_items(state: dict, raw_input: Any, scope: Scope) -> tuple[list, Any]:
    """A Map's items and the data its ItemSelector sees (its effective input)."""
    if scope.is_jsonata:
        items = jsonata_eval.resolve(state["Items"], scope.jsonata(input=raw_input)) if "Items" in state else raw_input
        data = raw_input
    else:
        data = effective_input(state, raw_input, scope)
        items = paths.select(state.get("ItemsPath", "$"), scope.path_ctx(data))
    if not isinstance(items, list):
        raise StatesError(errors.RUNTIME, f"Map items must be a JSON array, got {type(items).__name__}")
    return items, data


def map_item_input(state: dict, data: Any, index: int, item: Any, scope: Scope) -> Any:
    """One iteration's input: ItemSelector (or the legacy Parameters) applied, else the item."""
    scope.context["Map"] = {"Item": {"Index": index, "Value": item}}
    try:
        selector = state.get("ItemSelector", None if scope.is_jsonata else state.get("Parameters"))
        if selector is None:
            return item
        if scope.is_jsonata:
            return jsonata_eval.resolve(selector, scope.jsonata(input=data))
        return paths.payload(selector, scope.path_ctx(data), field_name="ItemSelector")
    finally:
        del scope.context["Map"]


def map_limits(state: dict, data: Any, scope: Scope) -> tuple[int, float | None, float | None]:
    """(MaxConcurrency (0 = unlimited), ToleratedFailureCount, ToleratedFailurePercentage)."""
    values = []
    for key in ("MaxConcurrency", "ToleratedFailureCount", "ToleratedFailurePercentage"):
        value = state.get(key)
        if jsonata_eval.is_expression(value):
            value = jsonata_eval.evaluate(jsonata_eval.expression_text(value), scope.jsonata(input=data))
        elif value is None and f"{key}Path" in state:
            value = paths.select(state[f"{key}Path"], scope.path_ctx(data))
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
            raise StatesError(errors.RUNTIME, f"{key} must be a non-negative number, got {value!r}")
        values.append(value)
    concurrency, count, percentage = values
    return int(concurrency or 0), count, percentage

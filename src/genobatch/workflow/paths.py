"""JSONPath input and output processing (states with ``QueryLanguage: JSONPath``).

The order AWS applies them in (developer guide, "Processing input and output"):
``InputPath`` -> ``Parameters`` / ``ItemSelector`` -> (the work) -> ``ResultSelector`` ->
``ResultPath`` -> ``OutputPath``. Paths are evaluated by ``jsonpath-ng`` (its ``ext`` parser, for
filters such as ``$.items[?(@.size > 10)]``); what is ours is AWS's shaping of the answer: a
*definite* path (only field names and single indices) gives the value itself, any other path
(wildcard, slice, filter, ``..``) gives the list of matches. ``$$`` addresses the context object,
``$name`` a workflow variable (set by ``Assign``), and a string starting ``States.`` in a ``.$``
field is an intrinsic function call (``intrinsics``).
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable
from typing import Any

from jsonpath_ng import Child, Fields, Index, Root
from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext import parse as _parse

from genobatch.workflow import errors
from genobatch.workflow.errors import StatesError

VARIABLE = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)(.*)$", re.DOTALL)


class PathContext:
    """What a path may address: the state's input (``$``), the context object (``$$``) and the
    workflow variables (``$name``); ``random`` draws seeded numbers for States.UUID/MathRandom."""

    def __init__(
        self, data: Any, context: dict, variables: dict[str, Any], random: Callable[[str], float] | None = None
    ):
        self.data = data
        self.context = context
        self.variables = variables
        self.random = random

    def with_data(self, data: Any) -> PathContext:
        """The same context with another ``$``."""
        return PathContext(data, self.context, self.variables, self.random)


@functools.lru_cache(maxsize=4096)
def compile_path(path: str):
    """The parsed jsonpath-ng expression for ``path`` (cached: parsing is the slow part).
    Raises ValueError naming the path when it is not JSONPath."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise ValueError(f"invalid JSONPath {path!r}: it must start with '$'")
    try:
        return _parse(path)
    except (JsonPathParserError, JsonPathLexerError, Exception) as exc:
        raise ValueError(f"invalid JSONPath {path!r}: {exc}") from exc


@functools.lru_cache(maxsize=4096)
def reference_steps(path: str) -> tuple[str | int, ...]:
    """The field names / indices of a *reference path* (definite: no wildcards, filters, slices),
    e.g. ``$.a.b[0]`` -> ``("a", "b", 0)``. Raises ValueError when the path is not one."""
    steps: list[str | int] = []

    def walk(node) -> None:
        if isinstance(node, Root):
            return
        if isinstance(node, Child):
            walk(node.left)
            walk(node.right)
            return
        if isinstance(node, Fields) and len(node.fields) == 1 and node.fields[0] != "*":
            steps.append(node.fields[0])
            return
        if isinstance(node, Index) and len(node.indices) == 1:
            steps.append(node.indices[0])
            return
        raise ValueError(f"{path!r} is not a reference path (only field names and single indices are allowed)")

    walk(compile_path(path))
    return tuple(steps)


def is_definite(path: str) -> bool:
    """Whether ``path`` selects at most one node (then its value is not wrapped in a list)."""
    try:
        reference_steps(path)
    except ValueError:
        return False
    return True


def select(path: str, ctx: PathContext, *, error: str = errors.RUNTIME, what: str = "path") -> Any:
    """The value ``path`` selects, shaped as AWS does; a definite path that selects nothing raises
    ``error`` (States.Runtime for InputPath/OutputPath, ParameterPathFailure for ``.$`` fields)."""
    root, rest = _root_for(path, ctx, error)
    full = "$" + rest
    try:
        expression = compile_path(full)
    except ValueError as exc:
        raise StatesError(error, f"Invalid {what} {path!r}: {exc}") from exc
    definite = is_definite(full)
    if definite:
        found, value = _walk(root, reference_steps(full))
        if not found:
            raise StatesError(error, f"Invalid {what} {path!r} : No results for path: {path}")
        return value
    try:
        return [match.value for match in expression.find(root)]
    except Exception as exc:  # e.g. a filter comparing a string with a number: the input's fault, not ours
        raise StatesError(error, f"Invalid {what} {path!r}: {type(exc).__name__}: {exc}") from exc


def _walk(root: Any, steps: tuple[str | int, ...]) -> tuple[bool, Any]:
    value = root
    for step in steps:
        if not _has(value, step):
            return False, None
        value = value[step]
    return True, value


def _has(node: Any, step: str | int) -> bool:
    if isinstance(node, dict):
        return isinstance(step, str) and step in node
    return isinstance(node, list) and isinstance(step, int) and -len(node) <= step < len(node)


def _root_for(path: str, ctx: PathContext, error: str) -> tuple[Any, str]:
    if not isinstance(path, str) or not path.startswith("$"):
        raise StatesError(error, f"Invalid path {path!r}: it must start with '$'")
    if path.startswith("$$"):
        return ctx.context, path[2:]
    variable = VARIABLE.match(path)
    if variable:
        name, rest = variable.groups()
        if name not in ctx.variables:
            raise StatesError(errors.RUNTIME, f"Invalid path {path!r}: the variable ${name} is not defined")
        return ctx.variables[name], rest
    return ctx.data, path[1:]


def input_path(path: str | None, ctx: PathContext, *, absent: bool) -> Any:
    """InputPath / OutputPath: absent means ``$`` (everything), null means ``{}``."""
    if absent:
        return ctx.data
    if path is None:
        return {}
    return select(path, ctx, error=errors.RUNTIME, what="path")


def payload(template: Any, ctx: PathContext, *, field_name: str = "Parameters") -> Any:
    """Resolve a payload template (Parameters, ItemSelector, ResultSelector, Assign): every key
    ending ``.$`` takes the value of its path / context path / variable / intrinsic function, and
    loses the ``.$``; other values are copied (nested objects and arrays resolved too)."""
    from genobatch.workflow import intrinsics  # intrinsics uses select(): a late import breaks the cycle

    if isinstance(template, dict):
        resolved = {}
        for key, value in template.items():
            if isinstance(key, str) and key.endswith(".$"):
                name = key[:-2]
                if not isinstance(value, str):
                    problem = f"The value of the field {key!r} in {field_name} must be a string"
                    raise StatesError(errors.RUNTIME, problem)
                if value.startswith("States."):
                    resolved[name] = intrinsics.evaluate(value, ctx)
                else:
                    try:
                        resolved[name] = copy.deepcopy(
                            select(value, ctx, error=errors.PARAMETER_PATH_FAILURE, what="JSONPath")
                        )
                    except StatesError as exc:
                        raise StatesError(
                            exc.error,
                            f"The JSONPath '{value}' specified for the field '{key}' could not be found in the input",
                        ) from exc
            else:
                resolved[key] = payload(value, ctx, field_name=field_name)
        return resolved
    if isinstance(template, list):
        return [payload(item, ctx, field_name=field_name) for item in template]
    return copy.deepcopy(template)


def result_path(path: str | None, state_input: Any, result: Any, *, absent: bool) -> Any:
    """ResultPath: absent or ``$`` -> the result; null -> the input unchanged; ``$.a.b`` -> the
    input with the result placed there (intermediate objects created). A path through a non-object
    raises States.ResultPathMatchFailure."""
    if absent or path == "$":
        return result
    if path is None:
        return state_input
    try:
        steps = reference_steps(path)
    except ValueError as exc:
        raise StatesError(errors.RESULT_PATH_MATCH_FAILURE, str(exc)) from exc
    if not steps:
        return result
    output = copy.deepcopy(state_input)
    if not isinstance(output, dict):
        raise StatesError(
            errors.RESULT_PATH_MATCH_FAILURE,
            f"Unable to apply ResultPath '{path}' to input {_short(state_input)}: the input is not a JSON object",
        )
    node = output
    for step in steps[:-1]:
        if isinstance(node, dict):
            if not isinstance(node.get(step), dict | list):
                node[step] = {}
            node = node[step]
        elif isinstance(node, list) and isinstance(step, int) and -len(node) <= step < len(node):
            node = node[step]
        else:
            raise StatesError(errors.RESULT_PATH_MATCH_FAILURE, f"Unable to apply ResultPath '{path}' to the input")
    last = steps[-1]
    if isinstance(node, dict) and isinstance(last, str) or _has(node, last):
        node[last] = result
    else:
        raise StatesError(errors.RESULT_PATH_MATCH_FAILURE, f"Unable to apply ResultPath '{path}' to the input")
    return output


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."

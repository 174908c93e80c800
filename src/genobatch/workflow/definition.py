"""Parse and validate Amazon States Language definitions (JSONPath and JSONata).

Validation follows AWS's CreateStateMachine: every problem is reported as
``<CODE>: <problem> at <JSON pointer>`` (e.g. "SCHEMA_VALIDATION_FAILED: Missing required field
'Next' at /States/Align", "MISSING_TRANSITION_TARGET: Missing 'Next' target: Foo at
/States/Align/Next"), all problems joined by ", " in one ``InvalidDefinition``.

A definition holds several *machines*: the top level (key ``""``), each Parallel branch
(``"<parent>/<state>/<branch index>"``) and each Map's item processor (``"<parent>/<state>"``).
Each state's effective query language is resolved here once (``state_query_language``).
Not supported (rejected with a clear error): distributed Map (ItemReader, ResultWriter,
ItemBatcher, ProcessorConfig Mode DISTRIBUTED).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from genobatch.workflow import errors, intrinsics, jsonata_eval, paths

JSONPATH = "JSONPath"
JSONATA = "JSONata"

_COMMON = {"Type", "Comment", "QueryLanguage"}
_IO_JSONPATH = {"InputPath", "OutputPath"}
_TRANSITION = {"Next", "End"}
_FIELDS = {
    "Task": _COMMON
    | _TRANSITION
    | _IO_JSONPATH
    | {"Resource", "Parameters", "ResultPath", "ResultSelector", "Retry", "Catch", "TimeoutSeconds"}
    | {"TimeoutSecondsPath", "HeartbeatSeconds", "HeartbeatSecondsPath", "Credentials", "Arguments", "Output"}
    | {"Assign"},
    "Pass": _COMMON | _TRANSITION | _IO_JSONPATH | {"Result", "ResultPath", "Parameters", "Output", "Assign"},
    "Choice": _COMMON | _IO_JSONPATH | {"Choices", "Default", "Output", "Assign"},
    "Wait": _COMMON
    | _TRANSITION
    | _IO_JSONPATH
    | {"Seconds", "Timestamp", "SecondsPath", "TimestampPath", "Output", "Assign"},
    "Succeed": _COMMON | _IO_JSONPATH | {"Output"},
    "Fail": _COMMON | {"Error", "Cause", "ErrorPath", "CausePath"},
    "Parallel": _COMMON
    | _TRANSITION
    | _IO_JSONPATH
    | {"Branches", "Parameters", "ResultPath", "ResultSelector", "Retry", "Catch", "Arguments", "Output"}
    | {"Assign"},
    "Map": _COMMON
    | _TRANSITION
    | _IO_JSONPATH
    | {"ItemProcessor", "Iterator", "ItemsPath", "Items", "ItemSelector", "Parameters", "MaxConcurrency"}
    | {"MaxConcurrencyPath", "ToleratedFailureCount", "ToleratedFailureCountPath", "ToleratedFailurePercentage"}
    | {"ToleratedFailurePercentagePath", "Label", "ResultPath", "ResultSelector", "Retry", "Catch", "Output"}
    | {"Assign", "ItemReader", "ResultWriter", "ItemBatcher"},
}
_JSONPATH_ONLY = {
    "InputPath", "OutputPath", "Parameters", "ResultPath", "ResultSelector", "ItemsPath", "SecondsPath",
    "TimestampPath", "ErrorPath", "CausePath", "TimeoutSecondsPath", "HeartbeatSecondsPath", "Iterator",
    "MaxConcurrencyPath", "ToleratedFailureCountPath", "ToleratedFailurePercentagePath", "Result",
}  # fmt: skip
_JSONATA_ONLY = {"Arguments", "Output", "Items"}
_UNSUPPORTED = {"ItemReader", "ResultWriter", "ItemBatcher"}
_RETRY_FIELDS = {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds"}
_RETRY_FIELDS |= {"JitterStrategy", "Comment"}
_CATCH_FIELDS = {"ErrorEquals", "Next", "ResultPath", "Output", "Assign", "Comment"}

COMPARISONS = {
    f"{kind}{op}"
    for kind in ("String", "Numeric", "Timestamp")
    for op in ("Equals", "LessThan", "GreaterThan", "LessThanEquals", "GreaterThanEquals")
} | {"BooleanEquals", "StringMatches"}
TYPE_TESTS = {"IsNull", "IsPresent", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp"}
CHOICE_OPERATORS = COMPARISONS | {f"{c}Path" for c in COMPARISONS if c != "StringMatches"} | TYPE_TESTS


class InvalidDefinition(ValueError):
    """The definition is not valid ASL; the message names the state and the problem like AWS's
    InvalidDefinition (e.g. "SCHEMA_VALIDATION_FAILED: Missing required field 'Next' at /States/Align")."""


@dataclass
class StateMachineDefinition:
    """A parsed, validated definition: ``raw`` as parsed JSON, ``machines`` (see the module doc)
    each ``{"StartAt", "States", "QueryLanguage"}``, the execution ``timeout_seconds``."""

    raw: dict[str, Any]
    machines: dict[str, dict] = field(default_factory=dict)
    timeout_seconds: float | None = None

    def state(self, machine: str, name: str) -> dict:
        """The state ``name`` of ``machine``."""
        return self.machines[machine]["States"][name]

    def start_at(self, machine: str) -> str:
        """The first state of ``machine``."""
        return self.machines[machine]["StartAt"]

    def state_query_language(self, machine: str, state: dict) -> str:
        """The query language ``state`` uses: its own, else its machine's (the top level's)."""
        return state.get("QueryLanguage") or self.machines[machine]["QueryLanguage"]


def parse_definition(text: str) -> StateMachineDefinition:
    """Parse and validate ``text`` (ASL JSON); raise InvalidDefinition naming state and problem."""
    try:
        raw = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError as exc:
        raise InvalidDefinition(f"INVALID_JSON_DESCRIPTION: {exc}") from exc
    if not isinstance(raw, dict):
        raise InvalidDefinition("SCHEMA_VALIDATION_FAILED: The definition must be a JSON object at /")
    validator = _Validator()
    definition = StateMachineDefinition(raw=raw)
    language = raw.get("QueryLanguage", JSONPATH)
    if language not in (JSONPATH, JSONATA):
        validator.problem(
            "SCHEMA_VALIDATION_FAILED", f"Value is not a valid QueryLanguage: {language}", "/QueryLanguage"
        )
        language = JSONPATH
    for key in raw:
        if key not in ("StartAt", "States", "Comment", "Version", "TimeoutSeconds", "QueryLanguage"):
            validator.problem("SCHEMA_VALIDATION_FAILED", f"Field '{key}' is not supported", f"/{key}")
    if "TimeoutSeconds" in raw:
        if _positive_int(raw["TimeoutSeconds"]):
            definition.timeout_seconds = float(raw["TimeoutSeconds"])
        else:
            validator.problem(
                "SCHEMA_VALIDATION_FAILED", "TimeoutSeconds must be a positive integer", "/TimeoutSeconds"
            )
    validator.machine(definition, "", raw, "", language, language)
    if validator.problems:
        raise InvalidDefinition(", ".join(validator.problems))
    return definition


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _non_negative_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class _Validator:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, code: str, message: str, where: str) -> None:
        self.problems.append(f"{code}: {message} at {where or '/'}")

    def machine(self, definition, key: str, raw: Any, where: str, language: str, top_language: str) -> None:
        if not isinstance(raw, dict):
            self.problem("SCHEMA_VALIDATION_FAILED", "Expected an object with StartAt and States", where)
            return
        states = raw.get("States")
        start_at = raw.get("StartAt")
        if not isinstance(states, dict) or not states:
            self.problem("SCHEMA_VALIDATION_FAILED", "Missing required field 'States'", where)
            return
        if not isinstance(start_at, str):
            self.problem("SCHEMA_VALIDATION_FAILED", "Missing required field 'StartAt'", where)
        elif start_at not in states:
            self.problem("MISSING_TRANSITION_TARGET", f"Missing 'StartAt' target: {start_at}", f"{where}/StartAt")
        definition.machines[key] = {"StartAt": start_at, "States": states, "QueryLanguage": language}
        terminal = False
        for name, state in states.items():
            state_where = f"{where}/States/{name}"
            if len(name) > 80:
                self.problem("SCHEMA_VALIDATION_FAILED", "State names must be at most 80 characters", state_where)
            if not isinstance(state, dict):
                self.problem("SCHEMA_VALIDATION_FAILED", "A state must be an object", state_where)
                continue
            terminal |= state.get("Type") in ("Succeed", "Fail") or state.get("End") is True
            self.state(definition, key, name, state, states, state_where, language, top_language)
        if not terminal:
            self.problem("MISSING_END_STATE", "No terminal state found in the machine", f"{where}/States")
        if isinstance(start_at, str) and start_at in states:
            reachable = _reachable(start_at, states)
            for name in states:
                if name not in reachable:
                    self.problem("UNREACHABLE_STATE", f"State '{name}' is not reachable", f"{where}/States/{name}")

    def state(self, definition, machine, name, state, states, where, machine_language, top_language) -> None:
        kind = state.get("Type")
        if kind not in _FIELDS:
            self.problem("SCHEMA_VALIDATION_FAILED", f"Missing or invalid field 'Type': {kind}", where)
            return
        language = state.get("QueryLanguage", machine_language)
        if language not in (JSONPATH, JSONATA):
            self.problem("SCHEMA_VALIDATION_FAILED", f"Value is not a valid QueryLanguage: {language}", where)
            return
        if top_language == JSONATA and language == JSONPATH:
            self.problem(
                "SCHEMA_VALIDATION_FAILED",
                "A state cannot use JSONPath when the state machine's QueryLanguage is JSONata",
                f"{where}/QueryLanguage",
            )
        for key in state:
            if key not in _FIELDS[kind]:
                self.problem("SCHEMA_VALIDATION_FAILED", f"Field '{key}' is not supported by {kind} states", where)
            elif key in _UNSUPPORTED:
                self.problem("SCHEMA_VALIDATION_FAILED", f"Field '{key}' (distributed Map) is not supported", where)
            elif language == JSONATA and key in _JSONPATH_ONLY:
                self.problem("SCHEMA_VALIDATION_FAILED", f"Field '{key}' is not supported by JSONata states", where)
            elif language == JSONPATH and key in _JSONATA_ONLY:
                self.problem("SCHEMA_VALIDATION_FAILED", f"Field '{key}' is only supported by JSONata states", where)
        self.transition(state, kind, states, where)
        self.paths(state, language, where)
        if kind == "Task" and not isinstance(state.get("Resource"), str):
            self.problem("SCHEMA_VALIDATION_FAILED", "Missing required field 'Resource'", where)
        for key in ("TimeoutSeconds", "HeartbeatSeconds"):
            value = state.get(key)
            if value is not None and not _positive_int(value) and not jsonata_eval.is_expression(value):
                self.problem("SCHEMA_VALIDATION_FAILED", f"{key} must be a positive integer", f"{where}/{key}")
        timeout, heartbeat = state.get("TimeoutSeconds"), state.get("HeartbeatSeconds")
        if _positive_int(timeout) and _positive_int(heartbeat) and heartbeat >= timeout:
            self.problem(
                "SCHEMA_VALIDATION_FAILED",
                "HeartbeatSeconds must be smaller than TimeoutSeconds",
                f"{where}/HeartbeatSeconds",
            )
        if kind in ("Task", "Parallel", "Map"):
            self.retry(state.get("Retry"), f"{where}/Retry")
            self.catch(state.get("Catch"), states, f"{where}/Catch")
        if kind == "Choice":
            self.choice(state, states, language, where)
        if kind == "Wait":
            given = [key for key in ("Seconds", "Timestamp", "SecondsPath", "TimestampPath") if key in state]
            if len(given) != 1:
                self.problem(
                    "SCHEMA_VALIDATION_FAILED",
                    "A Wait state needs exactly one of Seconds, Timestamp, SecondsPath, TimestampPath",
                    where,
                )
        if kind == "Parallel":
            branches = state.get("Branches")
            if not isinstance(branches, list) or not branches:
                self.problem("SCHEMA_VALIDATION_FAILED", "Missing required field 'Branches'", where)
            else:
                for index, branch in enumerate(branches):
                    self.machine(
                        definition, f"{machine}/{name}/{index}", branch, f"{where}/Branches[{index}]", language,
                        top_language,
                    )  # fmt: skip
        if kind == "Map":
            self.map(definition, machine, name, state, where, language, top_language)

    def transition(self, state, kind, states, where) -> None:
        if kind in ("Choice", "Succeed", "Fail"):
            return
        has_next, has_end = "Next" in state, "End" in state
        if has_next and has_end:
            self.problem("SCHEMA_VALIDATION_FAILED", "A state cannot have both 'Next' and 'End'", where)
        elif not has_next and not has_end:
            self.problem("SCHEMA_VALIDATION_FAILED", "Missing required field 'Next'", where)
        elif has_end and state["End"] is not True:
            self.problem("SCHEMA_VALIDATION_FAILED", "'End' must be true", f"{where}/End")
        elif has_next:
            self.target(state["Next"], states, "Next", f"{where}/Next")

    def target(self, target, states, what, where) -> None:
        if not isinstance(target, str) or target not in states:
            self.problem("MISSING_TRANSITION_TARGET", f"Missing '{what}' target: {target}", where)

    def paths(self, state, language, where) -> None:
        if language != JSONPATH:
            self.jsonata_fields(state, where)
            return
        for key in ("Parameters", "ItemSelector", "ResultSelector", "Assign"):
            if key in state:
                self.payload_template(state[key], f"{where}/{key}")
        for key in ("InputPath", "OutputPath", "ItemsPath", "SecondsPath", "TimestampPath", "ErrorPath", "CausePath"):
            value = state.get(key)
            if value is not None and not _valid_path(value):
                self.problem("INVALID_JSON_PATH", f"Invalid JSONPath: {value}", f"{where}/{key}")
        value = state.get("ResultPath")
        if value is not None:
            try:
                paths.reference_steps(value)
            except ValueError:
                self.problem("INVALID_JSON_PATH", f"Invalid reference path: {value}", f"{where}/ResultPath")

    def payload_template(self, template, where) -> None:
        """Every ``.$`` field must hold a path or an intrinsic function call that parses."""
        if isinstance(template, list):
            for index, item in enumerate(template):
                self.payload_template(item, f"{where}[{index}]")
            return
        if not isinstance(template, dict):
            return
        for key, value in template.items():
            if not (isinstance(key, str) and key.endswith(".$")):
                self.payload_template(value, f"{where}/{key}")
                continue
            if isinstance(value, str) and value.startswith("States."):
                try:
                    intrinsics.parse(value)
                except ValueError as exc:
                    self.problem("INVALID_JSON_PATH", f"Invalid intrinsic function call: {exc}", f"{where}/{key}")
            elif not _valid_path(value):
                self.problem("INVALID_JSON_PATH", f"Invalid JSONPath: {value}", f"{where}/{key}")

    def jsonata_fields(self, node, where) -> None:
        """Every ``{% %}`` string must be a JSONata expression that compiles."""
        if isinstance(node, dict):
            for key, value in node.items():
                if key not in ("Branches", "ItemProcessor", "Iterator", "Choices"):
                    self.jsonata_fields(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                self.jsonata_fields(item, f"{where}[{index}]")
        elif jsonata_eval.is_expression(node):
            try:
                jsonata_eval.compile_expression(jsonata_eval.expression_text(node))
            except ValueError as exc:
                self.problem("SCHEMA_VALIDATION_FAILED", str(exc), where)

    def retry(self, retriers, where) -> None:
        if retriers is None:
            return
        if not isinstance(retriers, list):
            self.problem("SCHEMA_VALIDATION_FAILED", "Retry must be an array", where)
            return
        for index, retrier in enumerate(retriers):
            at = f"{where}[{index}]"
            if not isinstance(retrier, dict):
                self.problem("SCHEMA_VALIDATION_FAILED", "A retrier must be an object", at)
                continue
            for key in retrier:
                if key not in _RETRY_FIELDS:
                    self.problem("SCHEMA_VALIDATION_FAILED", f"Field '{key}' is not supported in Retry", at)
            self.error_equals(retrier, index, len(retriers), at)
            if "IntervalSeconds" in retrier and not _positive_int(retrier["IntervalSeconds"]):
                self.problem("SCHEMA_VALIDATION_FAILED", "IntervalSeconds must be a positive integer", at)
            if "MaxAttempts" in retrier and not _non_negative_int(retrier["MaxAttempts"]):
                self.problem("SCHEMA_VALIDATION_FAILED", "MaxAttempts must be a non-negative integer", at)
            rate = retrier.get("BackoffRate", 2.0)
            if isinstance(rate, bool) or not isinstance(rate, int | float) or rate < 1.0:
                self.problem("SCHEMA_VALIDATION_FAILED", "BackoffRate must be a number >= 1.0", at)
            if "MaxDelaySeconds" in retrier and not _positive_int(retrier["MaxDelaySeconds"]):
                self.problem("SCHEMA_VALIDATION_FAILED", "MaxDelaySeconds must be a positive integer", at)
            if retrier.get("JitterStrategy", "NONE") not in ("FULL", "NONE"):
                self.problem("SCHEMA_VALIDATION_FAILED", "JitterStrategy must be FULL or NONE", at)

    def catch(self, catchers, states, where) -> None:
        if catchers is None:
            return
        if not isinstance(catchers, list):
            self.problem("SCHEMA_VALIDATION_FAILED", "Catch must be an array", where)
            return
        for index, catcher in enumerate(catchers):
            at = f"{where}[{index}]"
            if not isinstance(catcher, dict):
                self.problem("SCHEMA_VALIDATION_FAILED", "A catcher must be an object", at)
                continue
            for key in catcher:
                if key not in _CATCH_FIELDS:
                    self.problem("SCHEMA_VALIDATION_FAILED", f"Field '{key}' is not supported in Catch", at)
            self.error_equals(catcher, index, len(catchers), at)
            if "Next" not in catcher:
                self.problem("SCHEMA_VALIDATION_FAILED", "Missing required field 'Next'", at)
            else:
                self.target(catcher["Next"], states, "Next", f"{at}/Next")

    def error_equals(self, handler, index, count, at) -> None:
        names = handler.get("ErrorEquals")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            self.problem("SCHEMA_VALIDATION_FAILED", "Missing required field 'ErrorEquals'", at)
            return
        for name in names:
            if name.startswith("States.") and name not in errors.PREDEFINED:
                self.problem("SCHEMA_VALIDATION_FAILED", f"Unknown predefined error name: {name}", f"{at}/ErrorEquals")
        if errors.ALL in names and (len(names) != 1 or index != count - 1):
            self.problem(
                "SCHEMA_VALIDATION_FAILED",
                "States.ALL must appear alone in ErrorEquals and only in the last retrier or catcher",
                f"{at}/ErrorEquals",
            )

    def choice(self, state, states, language, where) -> None:
        choices = state.get("Choices")
        if not isinstance(choices, list) or not choices:
            self.problem("SCHEMA_VALIDATION_FAILED", "Missing required field 'Choices'", where)
        else:
            for index, rule in enumerate(choices):
                at = f"{where}/Choices[{index}]"
                if not isinstance(rule, dict):
                    self.problem("SCHEMA_VALIDATION_FAILED", "A choice rule must be an object", at)
                    continue
                if "Next" not in rule:
                    self.problem("SCHEMA_VALIDATION_FAILED", "Missing required field 'Next'", at)
                else:
                    self.target(rule["Next"], states, "Next", f"{at}/Next")
                self.rule(rule, language, at, top=True)
        if "Default" in state:
            self.target(state["Default"], states, "Default", f"{where}/Default")

    def rule(self, rule, language, at, *, top: bool) -> None:
        if not isinstance(rule, dict):
            self.problem("SCHEMA_VALIDATION_FAILED", "A choice rule must be an object", at)
            return
        if language == JSONATA:
            if "Condition" not in rule:
                self.problem("SCHEMA_VALIDATION_FAILED", "Missing required field 'Condition'", at)
            self.jsonata_fields(rule, at)
            return
        combinators = [key for key in ("And", "Or", "Not") if key in rule]
        operators = [key for key in rule if key in CHOICE_OPERATORS]
        allowed = {"Next", "Comment", "Variable", "Assign", *CHOICE_OPERATORS, "And", "Or", "Not"}
        for key in rule:
            if key not in allowed or (key in ("Next", "Assign") and not top):
                self.problem("SCHEMA_VALIDATION_FAILED", f"Field '{key}' is not supported in a choice rule", at)
        if combinators:
            if len(combinators) > 1 or operators or "Variable" in rule:
                self.problem("SCHEMA_VALIDATION_FAILED", "A choice rule has one of And, Or, Not, or a comparison", at)
            key = combinators[0]
            value = rule[key]
            if key == "Not":
                self.rule(value, language, f"{at}/Not", top=False)
            elif not isinstance(value, list) or not value:
                self.problem("SCHEMA_VALIDATION_FAILED", f"{key} must be a non-empty array of rules", at)
            else:
                for index, inner in enumerate(value):
                    self.rule(inner, language, f"{at}/{key}[{index}]", top=False)
            return
        if len(operators) != 1:
            self.problem("SCHEMA_VALIDATION_FAILED", "A choice rule needs exactly one comparison operator", at)
        if not isinstance(rule.get("Variable"), str) or not _valid_path(rule["Variable"]):
            self.problem("SCHEMA_VALIDATION_FAILED", "Missing or invalid field 'Variable'", at)

    def map(self, definition, machine, name, state, where, language, top_language) -> None:
        processor = state.get("ItemProcessor", state.get("Iterator"))
        if processor is None:
            self.problem("SCHEMA_VALIDATION_FAILED", "Missing required field 'ItemProcessor'", where)
            return
        if "ItemProcessor" in state and "Iterator" in state:
            self.problem("SCHEMA_VALIDATION_FAILED", "Use one of 'ItemProcessor' and 'Iterator'", where)
        config = processor.get("ProcessorConfig", {}) if isinstance(processor, dict) else {}
        if isinstance(config, dict) and config.get("Mode", "INLINE") != "INLINE":
            self.problem(
                "SCHEMA_VALIDATION_FAILED", "Only ProcessorConfig Mode INLINE is supported", f"{where}/ItemProcessor"
            )
        body = {key: value for key, value in processor.items() if key != "ProcessorConfig"} if config else processor
        self.machine(definition, f"{machine}/{name}", body, f"{where}/ItemProcessor", language, top_language)
        for key in ("MaxConcurrency", "ToleratedFailureCount"):
            value = state.get(key)
            if value is not None and not _non_negative_int(value) and not jsonata_eval.is_expression(value):
                self.problem("SCHEMA_VALIDATION_FAILED", f"{key} must be a non-negative integer", f"{where}/{key}")
        value = state.get("ToleratedFailurePercentage")
        bad_number = isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100
        if value is not None and not jsonata_eval.is_expression(value) and bad_number:
            self.problem(
                "SCHEMA_VALIDATION_FAILED",
                "ToleratedFailurePercentage must be a number from 0 to 100",
                f"{where}/ToleratedFailurePercentage",
            )


def _valid_path(value: Any) -> bool:
    """A JSONPath on the input (``$...``), the context object (``$$...``) or a variable (``$name...``)."""
    if not isinstance(value, str):
        return False
    if value.startswith("$$"):
        value = "$" + value[2:]
    else:
        variable = paths.VARIABLE.match(value)
        if variable:
            value = "$" + variable.group(2)
    try:
        paths.compile_path(value)
    except ValueError:
        return False
    return True


def _reachable(start: str, states: dict) -> set[str]:
    seen = {start}
    todo = [start]
    while todo:
        state = states.get(todo.pop())
        if not isinstance(state, dict):
            continue
        targets = [state.get("Next"), state.get("Default")]
        targets += [rule.get("Next") for rule in state.get("Choices") or [] if isinstance(rule, dict)]
        targets += [catcher.get("Next") for catcher in state.get("Catch") or [] if isinstance(catcher, dict)]
        for target in targets:
            if isinstance(target, str) and target in states and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen

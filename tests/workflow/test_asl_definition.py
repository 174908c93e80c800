"""Definition validation: every problem is named with its state and field, like AWS's InvalidDefinition."""

from __future__ import annotations

import json

import pytest

from genobatch.workflow import InvalidDefinition, parse_definition

pytestmark = pytest.mark.no_store  # pure core: the PostgreSQL pass would only repeat it


def problems(definition: dict) -> str:
    with pytest.raises(InvalidDefinition) as raised:
        parse_definition(json.dumps(definition))
    return str(raised.value)


def task(**extra) -> dict:
    return {"Type": "Task", "Resource": "arn:aws:states:::batch:submitJob.sync", **extra}


def test_a_valid_genomics_definition_parses_into_machines_for_branches_and_map():
    definition = parse_definition(
        json.dumps(
            {
                "StartAt": "Samples",
                "TimeoutSeconds": 3600,
                "States": {
                    "Samples": {
                        "Type": "Map",
                        "ItemsPath": "$.samples",
                        "MaxConcurrency": 2,
                        "ItemProcessor": {
                            "ProcessorConfig": {"Mode": "INLINE"},
                            "StartAt": "Align",
                            "States": {
                                "Align": task(Next="Fork"),
                                "Fork": {
                                    "Type": "Parallel",
                                    "End": True,
                                    "Branches": [
                                        {"StartAt": "Call", "States": {"Call": task(End=True)}},
                                        {"StartAt": "Stats", "States": {"Stats": task(End=True)}},
                                    ],
                                },
                            },
                        },
                        "End": True,
                    }
                },
            }
        )
    )
    assert sorted(definition.machines) == ["", "/Samples", "/Samples/Fork/0", "/Samples/Fork/1"]
    assert definition.timeout_seconds == 3600
    assert definition.start_at("/Samples/Fork/1") == "Stats"


def test_missing_next_names_the_state():
    message = problems({"StartAt": "Align", "States": {"Align": task(), "Done": {"Type": "Succeed"}}})
    assert "SCHEMA_VALIDATION_FAILED: Missing required field 'Next' at /States/Align" in message


def test_missing_transition_target_names_state_and_target():
    message = problems({"StartAt": "Align", "States": {"Align": task(Next="Foo")}})
    assert "MISSING_TRANSITION_TARGET: Missing 'Next' target: Foo at /States/Align/Next" in message


def test_start_at_default_and_choice_and_catch_targets_are_checked():
    message = problems(
        {
            "StartAt": "Nowhere",
            "States": {
                "Pick": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.x", "NumericEquals": 1, "Next": "Gone"}],
                    "Default": "Missing",
                },
                "Work": task(End=True, Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Lost"}]),
            },
        }
    )
    assert "Missing 'StartAt' target: Nowhere at /StartAt" in message
    assert "Missing 'Next' target: Gone at /States/Pick/Choices[0]/Next" in message
    assert "Missing 'Default' target: Missing at /States/Pick/Default" in message
    assert "Missing 'Next' target: Lost at /States/Work/Catch[0]/Next" in message


def test_unknown_field_for_the_state_type_is_named():
    message = problems({"StartAt": "P", "States": {"P": {"Type": "Pass", "Resource": "x", "End": True}}})
    assert "Field 'Resource' is not supported by Pass states at /States/P" in message


def test_unreachable_state_and_missing_terminal_state():
    message = problems({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}, "B": {"Type": "Succeed"}}})
    assert "UNREACHABLE_STATE: State 'B' is not reachable at /States/B" in message
    message = problems({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "A"}}})
    assert "MISSING_END_STATE" in message


def test_states_all_must_be_alone_and_last_and_retry_fields_are_checked():
    message = problems(
        {
            "StartAt": "T",
            "States": {
                "T": task(
                    End=True,
                    Retry=[
                        {"ErrorEquals": ["States.ALL"]},
                        {"ErrorEquals": ["States.Timeout"], "BackoffRate": 0.5, "JitterStrategy": "SOME"},
                    ],
                )
            },
        }
    )
    assert "States.ALL must appear alone in ErrorEquals and only in the last retrier" in message
    assert "BackoffRate must be a number >= 1.0 at /States/T/Retry[1]" in message
    assert "JitterStrategy must be FULL or NONE at /States/T/Retry[1]" in message
    assert "Missing required field 'ErrorEquals' at /States/T/Catch[0]" in problems(
        {"StartAt": "T", "States": {"T": task(End=True, Catch=[{"Next": "T"}])}}
    )


def test_problems_inside_map_and_parallel_name_their_nested_path():
    message = problems(
        {
            "StartAt": "M",
            "States": {
                "M": {
                    "Type": "Map",
                    "End": True,
                    "ItemProcessor": {"StartAt": "X", "States": {"X": task()}},
                },
                "P": {"Type": "Parallel", "End": True, "Branches": [{"StartAt": "Y", "States": {}}]},
            },
        }
    )
    assert "Missing required field 'Next' at /States/M/ItemProcessor/States/X" in message
    assert "Missing required field 'States' at /States/P/Branches[0]" in message
    assert "Missing required field 'ItemProcessor' at /States/M" in problems(
        {"StartAt": "M", "States": {"M": {"Type": "Map", "End": True}}}
    )


def test_query_language_fields_are_checked():
    message = problems(
        {
            "QueryLanguage": "JSONata",
            "StartAt": "T",
            "States": {"T": task(End=True, InputPath="$.x")},
        }
    )
    assert "Field 'InputPath' is not supported by JSONata states at /States/T" in message
    message = problems({"StartAt": "T", "States": {"T": task(End=True, Arguments={})}})
    assert "Field 'Arguments' is only supported by JSONata states at /States/T" in message


def test_choice_rules_and_wait_and_distributed_map_are_checked():
    message = problems(
        {
            "StartAt": "C",
            "States": {
                "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "Next": "W"}]},
                "W": {"Type": "Wait", "Seconds": 1, "Timestamp": "2026-01-01T00:00:00Z", "Next": "M"},
                "M": {
                    "Type": "Map",
                    "End": True,
                    "ItemProcessor": {
                        "ProcessorConfig": {"Mode": "DISTRIBUTED"},
                        "StartAt": "E",
                        "States": {"E": {"Type": "Succeed"}},
                    },
                },
            },
        }
    )
    assert "A choice rule needs exactly one comparison operator at /States/C/Choices[0]" in message
    assert "A Wait state needs exactly one of Seconds, Timestamp, SecondsPath, TimestampPath at /States/W" in message
    assert "Only ProcessorConfig Mode INLINE is supported at /States/M/ItemProcessor" in message


def test_not_json_and_bad_paths():
    with pytest.raises(InvalidDefinition, match="INVALID_JSON_DESCRIPTION"):
        parse_definition("{not json")
    message = problems({"StartAt": "P", "States": {"P": {"Type": "Pass", "ResultPath": "$.a[*]", "End": True}}})
    assert "INVALID_JSON_PATH: Invalid reference path: $.a[*] at /States/P/ResultPath" in message


def test_payload_template_paths_intrinsics_and_jsonata_are_checked_at_create_time():
    message = problems(
        {
            "StartAt": "T",
            "States": {
                "T": task(
                    End=True,
                    Parameters={"ok.$": "$myVar.x", "Inner": {"bad.$": "$.a b"}, "call.$": "States.Nope(1)"},
                    TimeoutSeconds=60,
                    HeartbeatSeconds=60,
                )
            },
        }
    )
    assert "INVALID_JSON_PATH: Invalid JSONPath: $.a b at /States/T/Parameters/Inner/bad.$" in message
    assert "unknown intrinsic function 'States.Nope'" in message and "/States/T/Parameters/call.$" in message
    assert "ok.$" not in message
    assert "HeartbeatSeconds must be smaller than TimeoutSeconds at /States/T/HeartbeatSeconds" in message
    message = problems(
        {
            "QueryLanguage": "JSONata",
            "StartAt": "T",
            "States": {
                "T": task(
                    End=True,
                    Arguments={"JobName": "{% $states.input.name & %}"},
                    Catch=[{"ErrorEquals": ["States.ALL"], "Next": "T", "Output": "{% ) %}"}],
                )
            },
        }
    )
    assert "invalid JSONata expression" in message and "at /States/T/Arguments/JobName" in message
    assert "at /States/T/Catch[0]/Output" in message

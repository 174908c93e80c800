"""Input/output processing, intrinsic functions, Choice rules and JSONata, checked against the
examples in AWS's Step Functions developer guide."""

from __future__ import annotations

import re

import pytest
from asl_driver import Driver

from genobatch.workflow import errors, intrinsics, jsonata_eval, paths, states
from genobatch.workflow.errors import StatesError

pytestmark = pytest.mark.no_store  # pure core: the PostgreSQL pass would only repeat it

CONTEXT = {"Execution": {"Id": "arn:aws:states:us-east-1:123:execution:sm:run-1", "Name": "run-1"}}


def ctx(data, variables=None) -> paths.PathContext:
    draws = iter(range(100))
    return paths.PathContext(data, CONTEXT, variables or {}, lambda key: ((next(draws) + 1) * 0.137) % 1)


def scope(language="JSONPath") -> states.Scope:
    return states.Scope({"Execution": {"Id": "x"}}, {}, 1000.0, lambda key: 0.5, language)


# -- paths (developer guide: "Processing input and output", "Example: Manipulating state data") --


def test_input_path_selects_a_node():
    data = {
        "comment": "Example for InputPath.",
        "dataset1": {"val1": 1, "val2": 2, "val3": 3},
        "dataset2": {"val1": "a", "val2": "b", "val3": "c"},
    }
    assert paths.input_path("$.dataset2", ctx(data), absent=False) == {"val1": "a", "val2": "b", "val3": "c"}
    assert paths.input_path(None, ctx(data), absent=False) == {}
    assert paths.input_path("$.dataset2.val1", ctx(data), absent=False) == "a"
    assert paths.input_path("$.a[0:2]", ctx({"a": [1, 2, 3, 4]}), absent=False) == [1, 2]  # Workflow Studio's example
    assert paths.input_path(None, ctx(data), absent=True) == data


def test_parameters_payload_template_with_paths_context_and_static_values():
    data = {
        "comment": "Example for Parameters.",
        "product": {
            "details": {"color": "blue", "size": "small", "material": "cotton"},
            "availability": "in stock",
            "sku": "2317",
            "cost": "$23",
        },
    }
    template = {
        "comment": "Selecting what I care about.",
        "MyDetails": {"size.$": "$.product.details.size", "exists.$": "$.product.availability", "StaticValue": "foo"},
        "ExecutionId.$": "$$.Execution.Id",
    }
    assert paths.payload(template, ctx(data)) == {
        "comment": "Selecting what I care about.",
        "MyDetails": {"size": "small", "exists": "in stock", "StaticValue": "foo"},
        "ExecutionId": "arn:aws:states:us-east-1:123:execution:sm:run-1",
    }


def test_parameters_path_failure_names_the_field():
    with pytest.raises(StatesError) as raised:
        paths.payload({"size.$": "$.missing"}, ctx({}))
    assert raised.value.error == errors.PARAMETER_PATH_FAILURE
    assert "'size.$'" in raised.value.cause


def test_indefinite_paths_give_lists_and_definite_ones_values():
    data = {"items": [{"size": 5, "n": "a"}, {"size": 20, "n": "b"}, {"size": 30, "n": "c"}]}
    assert paths.select("$.items[?(@.size > 10)].n", ctx(data)) == ["b", "c"]
    assert paths.select("$.items[*].size", ctx(data)) == [5, 20, 30]
    assert paths.select("$.items[1].n", ctx(data)) == "b"
    assert paths.select("$..n", ctx(data)) == ["a", "b", "c"]
    assert paths.select("$count.total", ctx(data, {"count": {"total": 3}})) == 3


def test_result_path_examples():
    data = {"comment": "This is a test.", "details": "Default example", "who": "AWS Step Functions"}
    result = "Hello, AWS Step Functions!"
    assert paths.result_path("$.taskresult", data, result, absent=False) == {**data, "taskresult": result}
    assert paths.result_path(None, data, result, absent=False) == data
    assert paths.result_path("$", data, result, absent=False) == result
    assert paths.result_path(None, data, result, absent=True) == result
    assert paths.result_path("$.a.b.c", {}, 1, absent=False) == {"a": {"b": {"c": 1}}}
    with pytest.raises(StatesError) as raised:
        paths.result_path("$.x", "not an object", 1, absent=False)
    assert raised.value.error == errors.RESULT_PATH_MATCH_FAILURE


def test_result_selector_then_result_path_then_output_path_on_a_task():
    """The EMR createCluster.sync example of "ResultSelector", run through the interpreter."""
    definition = {
        "StartAt": "Create",
        "States": {
            "Create": {
                "Type": "Task",
                "Resource": "arn:aws:states:::elasticmapreduce:createCluster.sync",
                "InputPath": "$.cluster",
                "ResultSelector": {"ClusterId.$": "$.output.ClusterId", "ResourceType.$": "$.resourceType"},
                "ResultPath": "$.EMROutput",
                "OutputPath": "$.EMROutput",
                "End": True,
            }
        },
    }
    run = Driver(definition, {"cluster": {"Name": "MyWorkflowCluster"}, "other": 1})
    assert run.task().parameters == {"Name": "MyWorkflowCluster"}
    run.succeed(
        run.task(),
        {
            "resourceType": "elasticmapreduce",
            "resource": "createCluster.sync",
            "output": {"SdkHttpMetadata": {"HttpStatusCode": 200}, "ClusterId": "AKIAIOSFODNN7EXAMPLE"},
        },
    )
    assert run.status == "SUCCEEDED"
    assert run.execution.output == {"ClusterId": "AKIAIOSFODNN7EXAMPLE", "ResourceType": "elasticmapreduce"}


def test_pass_state_result_and_result_path():
    definition = {
        "StartAt": "Seed",
        "States": {
            "Seed": {
                "Type": "Pass",
                "Result": {"x-datum": 0.381018, "y-datum": 622.2269926397355},
                "ResultPath": "$.coords",
                "Next": "Keep",
            },
            "Keep": {"Type": "Pass", "Parameters": {"x.$": "$.coords.x-datum", "g.$": "$.georefOf"}, "End": True},
        },
    }
    run = Driver(definition, {"georefOf": "Home"})
    assert run.execution.output == {"x": 0.381018, "g": "Home"}


# -- intrinsic functions (developer guide: "Intrinsic functions", each function's example) --

INTRINSIC_EXAMPLES = [
    ("States.Format('Hello, my name is {}.', $.name)", {"name": "Arnav"}, "Hello, my name is Arnav."),
    ("States.Format('{} \\{literal\\} {}', $.n, $.o)", {"n": 1, "o": {"a": [1]}}, '1 {literal} {"a":[1]}'),
    ("States.StringToJson($.someString)", {"someString": '{"number": 20}'}, {"number": 20}),
    ("States.JsonToString($.foo)", {"foo": {"bar": "baz", "n": [1, 2]}}, '{"bar":"baz","n":[1,2]}'),
    ("States.Array('Foo', 2020, $.someJson, null)", {"someJson": {"random": "abcdefg"}},
     ["Foo", 2020, {"random": "abcdefg"}, None]),
    ("States.ArrayPartition($.inputArray, 4)", {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9]},
     [[1, 2, 3, 4], [5, 6, 7, 8], [9]]),
    ("States.ArrayContains($.inputArray, $.lookingFor)", {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "lookingFor": 5},
     True),
    ("States.ArrayRange(1, 9, 2)", {}, [1, 3, 5, 7, 9]),
    ("States.ArrayGetItem($.inputArray, $.index)", {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "index": 5}, 6),
    ("States.ArrayLength($.inputArray)", {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9]}, 9),
    ("States.ArrayUnique($.inputArray)", {"inputArray": [1, 2, 3, 3, 3, 3, 3, 3, 4]}, [1, 2, 3, 4]),
    ("States.Base64Encode($.input)", {"input": "Data to encode"}, "RGF0YSB0byBlbmNvZGU="),
    ("States.Base64Decode($.base64)", {"base64": "RGF0YSB0byBlbmNvZGU="}, "Data to encode"),
    ("States.Hash($.Data, $.Algorithm)", {"Data": "input data", "Algorithm": "SHA-1"},
     "aaff4a450a104cd177d28d18d74485e8cae074b7"),
    ("States.JsonMerge($.json1, $.json2, false)",
     {"json1": {"a": {"a1": 1, "a2": 2}, "b": 2}, "json2": {"a": {"a3": 1, "a4": 2}, "c": 3}},
     {"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3}),
    ("States.MathAdd($.value1, $.step)", {"value1": 111, "step": -1}, 110),
    ("States.StringSplit($.inputString, $.splitter)", {"inputString": "1,2,3,4,5", "splitter": ","},
     ["1", "2", "3", "4", "5"]),
    ("States.StringSplit($.inputString, $.splitter)", {"inputString": "This.is+a,test=string", "splitter": ".+,="},
     ["This", "is", "a", "test", "string"]),
    ("States.ArrayLength(States.ArrayRange(1, States.MathAdd(2, 3), 1))", {}, 5),
]  # fmt: skip


@pytest.mark.parametrize(("call", "data", "expected"), INTRINSIC_EXAMPLES, ids=[c for c, _, _ in INTRINSIC_EXAMPLES])
def test_intrinsic_examples(call, data, expected):
    assert intrinsics.evaluate(call, ctx(data)) == expected


def test_uuid_and_math_random_are_drawn_from_the_seed():
    first = intrinsics.evaluate("States.UUID()", ctx({}))
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", first)
    assert intrinsics.evaluate("States.UUID()", ctx({})) == first  # same draws -> same value
    value = intrinsics.evaluate("States.MathRandom($.start, $.end)", ctx({"start": 1, "end": 999}))
    assert 1 <= value < 999
    seeded = [intrinsics.evaluate("States.MathRandom(1, 999, 42)", ctx({})) for _ in range(2)]
    assert seeded[0] == seeded[1]


@pytest.mark.parametrize(
    ("call", "problem"),
    [
        ("States.ArrayRange(1, 2000, 1)", "more than 1000"),
        ("States.ArrayGetItem(States.Array(1), 3)", "out of range"),
        ("States.Hash('x', 'SHA-3')", "algorithm"),
        ("States.JsonMerge(States.StringToJson('{}'), States.StringToJson('{}'), true)", "shallow"),
        ("States.Format('{} {}', 1)", "placeholders"),
        ("States.Nope(1)", "unknown intrinsic function"),
        ("States.Format('unterminated)", "unterminated"),
    ],
)
def test_intrinsic_failures_are_states_intrinsic_failure(call, problem):
    with pytest.raises(StatesError) as raised:
        intrinsics.evaluate(call, ctx({}))
    assert raised.value.error == errors.INTRINSIC_FAILURE
    assert problem in raised.value.cause


# -- Choice rules (developer guide: "Choice workflow state", its example) --

CHOICE = {
    "Type": "Choice",
    "Choices": [
        {"Not": {"Variable": "$.type", "StringEquals": "Private"}, "Next": "Public"},
        {"Variable": "$.value", "NumericEquals": 0, "Next": "ValueIsZero"},
        {
            "And": [
                {"Variable": "$.value", "NumericGreaterThanEquals": 20},
                {"Variable": "$.value", "NumericLessThan": 30},
            ],
            "Next": "ValueInTwenties",
        },
        {
            "Or": [
                {"Variable": "$.when", "TimestampLessThan": "2016-03-14T01:59:00Z"},
                {"Variable": "$.name", "StringMatches": "log-*.txt"},
                {"Variable": "$.flag", "BooleanEquals": True},
                {"Variable": "$.value", "NumericGreaterThanPath": "$.limit"},
            ],
            "Next": "Special",
        },
        {"And": [{"Variable": "$.opt", "IsPresent": True}, {"Variable": "$.opt", "IsNull": True}], "Next": "NullOpt"},
    ],
    "Default": "DefaultState",
}


LATE = {"type": "Private", "value": 30, "when": "2016-03-14T02:00:00Z"}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"type": "Public", "value": 0}, "Public"),
        ({"type": "Private", "value": 0}, "ValueIsZero"),
        ({"type": "Private", "value": 25}, "ValueInTwenties"),
        ({"type": "Private", "value": 30, "when": "2016-03-14T01:00:00Z"}, "Special"),
        ({**LATE, "name": "log-2026.txt"}, "Special"),
        ({**LATE, "name": "x", "flag": True}, "Special"),
        ({**LATE, "name": "x", "flag": False, "limit": 29}, "Special"),
        ({**LATE, "name": "x", "flag": False, "limit": 30, "opt": None}, "NullOpt"),
        ({**LATE, "name": "log-2026.csv", "flag": False, "limit": 30}, "DefaultState"),
    ],
)
def test_choice_rules(data, expected):
    assert states.choose(CHOICE, data, scope())[0] == expected


def test_choice_without_match_or_default_fails_with_no_choice_matched_and_missing_variable_is_runtime():
    rule = {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": 1, "Next": "A"}]}
    with pytest.raises(StatesError) as raised:
        states.choose(rule, {"x": 2}, scope())
    assert raised.value.error == errors.NO_CHOICE_MATCHED
    with pytest.raises(StatesError) as raised:
        states.choose(rule, {}, scope())
    assert raised.value.error == errors.RUNTIME


def test_string_matches_escapes():
    rule = {"Type": "Choice", "Choices": [{"Variable": "$.s", "StringMatches": "a\\*b*", "Next": "A"}], "Default": "B"}
    assert states.choose(rule, {"s": "a*bcd"}, scope())[0] == "A"
    assert states.choose(rule, {"s": "axbcd"}, scope())[0] == "B"


# -- JSONata (developer guide: "Transforming data with JSONata", AWS's added functions) --


def jsonata_ctx(data):
    return jsonata_eval.JsonataContext({"input": data, "context": {}}, {"limit": 2}, 1700000000.0, lambda key: 0.25)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("$partition([1,2,3,4], 2)", [[1, 2], [3, 4]]),
        ("$range(0, 10, 2)", [0, 2, 4, 6, 8, 10]),
        ('$hash("input data", "SHA-1")', "aaff4a450a104cd177d28d18d74485e8cae074b7"),
        ("$parse($states.input.json).a", 1),
        ("$random()", 0.25),
        ("$sum($states.input.numbers) + $limit", 8),
        ("$states.input.numbers[$ > 1]", [2, 3]),
        ('$uppercase($states.input.name) & "!"', "ARNAV!"),
        ("$now()", "2023-11-14T22:13:20.000Z"),
    ],
)
def test_jsonata_expressions(expression, expected):
    data = {"json": '{"a": 1}', "numbers": [1, 2, 3], "name": "arnav"}
    assert jsonata_eval.evaluate(expression, jsonata_ctx(data)) == expected


def test_jsonata_uuid_and_query_errors():
    assert re.fullmatch(r"[0-9a-f-]{36}", jsonata_eval.evaluate("$uuid()", jsonata_ctx({})))
    with pytest.raises(StatesError) as raised:
        jsonata_eval.evaluate("$parse('not json')", jsonata_ctx({}))
    assert raised.value.error == errors.QUERY_EVALUATION_ERROR
    with pytest.raises(StatesError) as raised:
        jsonata_eval.evaluate("1 +", jsonata_ctx({}))
    assert raised.value.error == errors.QUERY_EVALUATION_ERROR
    with pytest.raises(StatesError) as raised:
        jsonata_eval.evaluate("$sum", jsonata_ctx({}))  # a function is not a JSON value
    assert raised.value.error == errors.QUERY_EVALUATION_ERROR


def test_jsonata_state_machine_arguments_output_assign_and_condition():
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Submit",
        "States": {
            "Submit": {
                "Type": "Task",
                "Resource": "arn:aws:states:::batch:submitJob.sync",
                "Arguments": {"JobName": "{% 'align-' & $states.input.sample %}", "JobQueue": "q"},
                "Assign": {"jobId": "{% $states.result.JobId %}", "sample": "{% $states.input.sample %}"},
                "Output": {"status": "{% $states.result.Status %}"},
                "Next": "Check",
            },
            "Check": {
                "Type": "Choice",
                "Choices": [{"Condition": "{% $states.input.status = 'SUCCEEDED' %}", "Next": "Done"}],
                "Default": "Broken",
            },
            "Done": {"Type": "Succeed", "Output": {"job": "{% $jobId %}", "sample": "{% $sample %}"}},
            "Broken": {"Type": "Fail", "Error": "Broken", "Cause": "{% 'job ' & $jobId %}"},
        },
    }
    run = Driver(definition, {"sample": "NA12878"})
    assert run.task().parameters == {"JobName": "align-NA12878", "JobQueue": "q"}
    run.succeed(run.task(), {"JobId": "j-1", "Status": "SUCCEEDED"})
    assert run.status == "SUCCEEDED"
    assert run.execution.output == {"job": "j-1", "sample": "NA12878"}
    exited = [e for e in run.history if e["type"] == "TaskStateExited"][0]
    assert exited["stateExitedEventDetails"]["assignedVariables"] == {"jobId": '"j-1"', "sample": '"NA12878"'}

    run = Driver(definition, {"sample": "NA1"})
    run.succeed(run.task(), {"JobId": "j-2", "Status": "FAILED"})
    assert (run.status, run.execution.error, run.execution.cause) == ("FAILED", "Broken", "job j-2")


def test_jsonata_catch_output_sees_error_output_and_map_items():
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "Items": "{% $states.input.samples %}",
                "ItemSelector": {
                    "name": "{% $states.context.Map.Item.Value %}",
                    "i": "{% $states.context.Map.Item.Index %}",
                },
                "ItemProcessor": {
                    "StartAt": "Work",
                    "States": {
                        "Work": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::batch:submitJob.sync",
                            "End": True,
                            "Catch": [
                                {
                                    "ErrorEquals": ["States.ALL"],
                                    "Next": "Recover",
                                    "Output": {
                                        "failed": "{% $states.input.name %}",
                                        "why": "{% $states.errorOutput.Cause %}",
                                    },
                                }
                            ],
                        },
                        "Recover": {"Type": "Pass", "End": True},
                    },
                },
                "End": True,
            }
        },
    }
    run = Driver(definition, {"samples": ["a", "b"]})
    tasks = run.tasks_of("Work")
    assert [t.parameters for t in tasks] == [{"name": "a", "i": 0}, {"name": "b", "i": 1}]
    run.succeed(tasks[0], "ok-a")
    run.fail(tasks[1], "States.TaskFailed", "exit 1")
    assert run.status == "SUCCEEDED"
    assert run.execution.output == ["ok-a", {"failed": "b", "why": "exit 1"}]

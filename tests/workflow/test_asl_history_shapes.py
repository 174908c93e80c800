"""Every history event the core emits has the shape of botocore's stepfunctions ``HistoryEvent``
(the schema of record): a known ``type``, and details under a member of HistoryEvent whose fields
are members of the details shape, with the right JSON types."""

from __future__ import annotations

import json

import botocore.session
import pytest
from asl_driver import Driver
from test_asl_execution import REPLAY_DEFINITION, drive_replay_scenario, map_definition, parallel_definition

from genobatch.workflow import StopRequested, TaskStarted

pytestmark = pytest.mark.no_store  # pure core: the PostgreSQL pass would only repeat it

MODEL = botocore.session.get_session().get_service_model("stepfunctions")
HISTORY_EVENT = MODEL.shape_for("HistoryEvent")
JSON_TYPES = {"string": str, "integer": int, "long": int, "boolean": bool, "map": dict, "structure": dict}


def assert_shape(event: dict) -> None:
    assert event["type"] in HISTORY_EVENT.members["type"].enum, event["type"]
    assert isinstance(event["id"], int) and isinstance(event["previousEventId"], int)
    assert isinstance(event["timestamp"], float | int)
    for key, details in event.items():
        if key in ("type", "id", "previousEventId", "timestamp"):
            continue
        assert key in HISTORY_EVENT.members, f"{event['type']}: {key} is not a HistoryEvent member"
        shape = HISTORY_EVENT.members[key]
        for name, value in details.items():
            assert name in shape.members, f"{event['type']}: {key}.{name} is not in {shape.name}"
            assert isinstance(value, JSON_TYPES[shape.members[name].type_name]), (event["type"], name, value)
    json.dumps(event)


def test_every_emitted_event_matches_botocore():
    runs = [drive_replay_scenario(), Driver({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}, {})]
    run = Driver(map_definition(ToleratedFailurePercentage=50), {"samples": ["a", "b", "c", "d"], "ref": "r"})
    first, second, third, _ = run.tasks_of("Align")
    run.send(TaskStarted(first.token, {"jobId": "j-1", "jobName": "a"}))
    run.fail(first)
    run.fail(second)
    run.fail(third)  # 3 of 4 > 50 %: the Map fails, the last iteration is aborted
    runs.append(run)
    run = Driver(parallel_definition(), {"name": "x"})
    run.send(StopRequested("Stop", "by test"))
    runs.append(run)
    run = Driver({**REPLAY_DEFINITION, "TimeoutSeconds": 1}, {"samples": ["a"]}, now=0.0)
    run.fire_next_timer()
    runs.append(run)
    seen = set()
    for run in runs:
        for event in run.history:
            assert_shape(event)
            seen.add(event["type"])
    assert run.status == "TIMED_OUT" and runs[2].execution.error == "States.ExceedToleratedFailureThreshold"
    expected = {
        "ExecutionStarted", "ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut",
        "ExecutionRedriven", "TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskSubmitted", "TaskSucceeded",
        "TaskFailed", "TaskStateExited", "TaskStateAborted", "MapStateEntered", "MapStateStarted",
        "MapIterationStarted", "MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted", "MapStateFailed",
        "ParallelStateEntered", "ParallelStateStarted", "WaitStateEntered", "PassStateEntered", "PassStateExited",
    }  # fmt: skip
    assert expected <= seen, expected - seen

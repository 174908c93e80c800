"""The interpreter core driven by events and a fake clock: Task, Retry/Catch, timeouts, Wait,
Map, Parallel, StopExecution, execution timeout, and replay determinism."""

from __future__ import annotations

import json
import time

import pytest
from asl_driver import Driver

from genobatch.workflow import (
    CancelTask,
    Execution,
    RunTask,
    StopRequested,
    TaskStarted,
    TaskSucceeded,
    apply,
    event_from_dict,
)
from genobatch.workflow.events import to_dict

pytestmark = pytest.mark.no_store  # pure core: the PostgreSQL pass would only repeat it

BATCH = "arn:aws:states:::batch:submitJob.sync"


def task(**extra) -> dict:
    return {"Type": "Task", "Resource": BATCH, "Parameters": {"JobName.$": "$.name", "JobQueue": "q"}, **extra}


def one_task(**extra) -> dict:
    return {"StartAt": "Work", "States": {"Work": task(End=True, **extra)}}


def test_task_runs_once_and_history_has_aws_shapes():
    run = Driver(one_task(ResultPath="$.job"), {"name": "align"})
    work = run.task("Work")
    assert (work.resource, work.parameters) == (BATCH, {"JobName": "align", "JobQueue": "q"})
    assert work.token == "/Work@0#0#r0"
    run.send(TaskStarted(work.token, {"jobId": "j-1"}))
    run.succeed(work, {"jobId": "j-1", "status": "SUCCEEDED"})
    assert run.status == "SUCCEEDED"
    assert run.execution.output == {"name": "align", "job": {"jobId": "j-1", "status": "SUCCEEDED"}}
    assert run.types() == [
        "ExecutionStarted", "TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskSubmitted",
        "TaskSucceeded", "TaskStateExited", "ExecutionSucceeded",
    ]  # fmt: skip
    assert [e["id"] for e in run.history] == list(range(1, 9))
    scheduled = run.history[2]
    assert scheduled["previousEventId"] == 2
    assert scheduled["taskScheduledEventDetails"]["resourceType"] == "batch"
    assert scheduled["taskScheduledEventDetails"]["resource"] == "submitJob.sync"
    assert json.loads(scheduled["taskScheduledEventDetails"]["parameters"]) == work.parameters
    assert run.history[4]["taskSubmittedEventDetails"]["output"] == '{"jobId":"j-1"}'


def test_retry_backoff_with_max_delay_then_catch():
    retry = [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 2, "BackoffRate": 1.5, "MaxAttempts": 3,
              "MaxDelaySeconds": 3}]  # fmt: skip
    definition = {
        "StartAt": "Work",
        "States": {
            "Work": task(
                Retry=retry,
                Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Recover"}],
                End=True,
            ),
            "Recover": {"Type": "Pass", "End": True},
        },
    }
    run = Driver(definition, {"name": "x"}, now=0.0)
    delays, tokens = [], []
    for _ in range(3):
        failing = run.task("Work")
        tokens.append(failing.token)
        start = run.now
        run.fail(failing, "States.TaskFailed", "exit 1")
        timer = next(iter(run.timers))
        delays.append(run.timers[timer] - start)
        run.fire_next_timer()
    assert delays == [2.0, 3.0, 3.0]
    last = run.task("Work")
    tokens.append(last.token)
    assert len(set(tokens)) == 4  # each attempt its own idempotency key
    run.fail(last, "States.TaskFailed", "exit 1")
    assert run.status == "SUCCEEDED"
    assert run.execution.output == {"name": "x", "error": {"Error": "States.TaskFailed", "Cause": "exit 1"}}


def test_full_jitter_is_bounded_and_replays_identically():
    retry = [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 10, "MaxAttempts": 5, "JitterStrategy": "FULL"}]

    def delays(seed: int) -> list[float]:
        run = Driver(one_task(Retry=retry), {"name": "x"}, seed=seed, now=0.0)
        found = []
        for attempt in range(5):
            start = run.now
            run.fail(run.task("Work"))
            fire_at = next(iter(run.timers.values()))
            assert 0 <= fire_at - start <= 10 * 2**attempt
            found.append(fire_at - start)
            run.fire_next_timer()
        return found

    assert delays(1) == delays(1)
    assert delays(1) != delays(2)


def test_states_all_does_not_catch_states_runtime():
    definition = {
        "StartAt": "Work",
        "States": {
            "Work": task(InputPath="$.missing", Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Recover"}], End=True),
            "Recover": {"Type": "Pass", "End": True},
        },
    }
    run = Driver(definition, {"name": "x"})
    assert (run.status, run.execution.error) == ("FAILED", "States.Runtime")
    definition["States"]["Work"]["Catch"][0]["ErrorEquals"] = ["States.Runtime"]
    assert Driver(definition, {"name": "x"}).status == "SUCCEEDED"


def test_task_failed_matches_custom_errors_but_not_timeout():
    definition = {
        "StartAt": "Work",
        "States": {
            "Work": task(TimeoutSeconds=5, Catch=[{"ErrorEquals": ["States.TaskFailed"], "Next": "Recover"}], End=True),
            "Recover": {"Type": "Pass", "End": True},
        },
    }
    run = Driver(definition, {"name": "x"})
    run.fail(run.task(), "MyApp.Error", "custom")
    assert run.status == "SUCCEEDED"
    run = Driver(definition, {"name": "x"})
    run.fire_next_timer()
    assert (run.status, run.execution.error) == ("FAILED", "States.Timeout")


def test_timeout_seconds_cancels_the_task_and_retries_with_a_fresh_token():
    """The genomics sample's tasks: TimeoutSeconds + Retry on States.Timeout (MaxAttempts 2, BackoffRate 1.5)."""
    retry = [{"ErrorEquals": ["States.Timeout"], "MaxAttempts": 2, "BackoffRate": 1.5}]
    run = Driver(one_task(TimeoutSeconds=1800, HeartbeatSeconds=60, Retry=retry), {"name": "x"}, now=0.0)
    first = run.task()
    assert (first.timeout_s, first.heartbeat_s) == (1800, 60)
    assert list(run.timers.values()) == [1800.0]  # TimeoutSeconds only: no heartbeat timer
    run.fire_next_timer()
    assert first.token in run.cancelled
    assert "TaskTimedOut" in run.types()
    run.fire_next_timer()  # the retry interval (1 s)
    second = run.task()
    assert second.token != first.token and second.parameters == first.parameters
    run.succeed(second, {"status": "SUCCEEDED"})
    assert run.status == "SUCCEEDED"
    # A late answer for the timed-out attempt changes nothing.
    before = run.execution.to_dict()
    assert run.send(TaskSucceeded(first.token, {"late": True})) == []
    assert run.execution.to_dict() == before


def test_heartbeat_seconds_does_not_time_out_a_running_batch_sync_task():
    run = Driver(one_task(HeartbeatSeconds=60), {"name": "x"}, now=0.0)
    assert run.timers == {}  # nothing would fire without heartbeats
    work = run.task()
    run.now = 10_000.0  # hours later, no heartbeat ever sent
    run.succeed(work, {"status": "SUCCEEDED"})
    assert run.status == "SUCCEEDED"


def test_wait_seconds_and_timestamp_path():
    definition = {
        "StartAt": "Nap",
        "States": {
            "Nap": {"Type": "Wait", "Seconds": 10, "Next": "Until"},
            "Until": {"Type": "Wait", "TimestampPath": "$.at", "Next": "Done"},
            "Done": {"Type": "Succeed"},
        },
    }
    run = Driver(definition, {"at": "2026-01-01T00:01:00Z"}, now=1767225600.0)  # 2026-01-01T00:00:00Z
    assert list(run.timers.values()) == [1767225610.0]
    run.fire_next_timer()
    assert list(run.timers.values()) == [1767225660.0]
    run.fire_next_timer()
    assert run.status == "SUCCEEDED" and run.execution.output == {"at": "2026-01-01T00:01:00Z"}


def map_definition(**map_fields) -> dict:
    return {
        "StartAt": "Samples",
        "States": {
            "Samples": {
                "Type": "Map",
                "ItemsPath": "$.samples",
                "ItemSelector": {"name.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index", "ref.$": "$.ref"},
                "ItemProcessor": {"StartAt": "Align", "States": {"Align": task(End=True)}},
                "ResultPath": "$.aligned",
                "End": True,
                **map_fields,
            }
        },
    }


def test_map_max_concurrency_keeps_order_of_results():
    run = Driver(map_definition(MaxConcurrency=2), {"samples": ["a", "b", "c", "d", "e"], "ref": "hg38"})
    assert [t.parameters["JobName"] for t in run.tasks_of("Align")] == ["a", "b"]
    assert run.history[2]["mapStateStartedEventDetails"] == {"length": 5}
    for _ in range(5):
        running = run.tasks_of("Align")
        assert len(running) <= 2
        run.succeed(running[-1], f"bam-{running[-1].parameters['JobName']}")
    assert run.status == "SUCCEEDED"
    assert run.execution.output["aligned"] == ["bam-a", "bam-b", "bam-c", "bam-d", "bam-e"]
    assert run.types().count("MapIterationSucceeded") == 5


def test_map_failure_aborts_running_iterations_and_catch_on_task_failed_matches_at_map_level():
    definition = map_definition(
        Catch=[{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "Report"}]
    )
    definition["States"]["Samples"].pop("End")
    definition["States"]["Samples"]["Next"] = "Report"
    definition["States"]["Report"] = {"Type": "Pass", "End": True}
    run = Driver(definition, {"samples": ["a", "b", "c"], "ref": "hg38"})
    a, b, c = run.tasks_of("Align")
    run.succeed(a, "bam-a")
    run.fail(b, "States.TaskFailed", "Essential container in task exited")
    assert c.token in run.cancelled
    assert "MapIterationAborted" in run.types() and "MapIterationFailed" in run.types()
    assert run.status == "SUCCEEDED"
    assert run.execution.output["error"] == {
        "Error": "States.TaskFailed",
        "Cause": "Essential container in task exited",
    }
    assert list(run.execution.frames) == [""]  # iterations' frames dropped once the Map is over


def test_map_tolerated_failure_count():
    run = Driver(map_definition(ToleratedFailureCount=1), {"samples": ["a", "b", "c"], "ref": "r"})
    a, b, c = run.tasks_of("Align")
    run.fail(a, "States.TaskFailed", "bad a")
    run.succeed(b, "bam-b")
    run.succeed(c, "bam-c")
    assert run.status == "SUCCEEDED"
    assert run.execution.output["aligned"][0] == {"Error": "States.TaskFailed", "Cause": "bad a"}
    run = Driver(map_definition(ToleratedFailureCount=1), {"samples": ["a", "b", "c"], "ref": "r"})
    a, b, c = run.tasks_of("Align")
    run.fail(a)
    run.fail(b)
    assert (run.status, run.execution.error) == ("FAILED", "States.ExceedToleratedFailureThreshold")


def test_empty_map_succeeds_with_empty_list():
    run = Driver(map_definition(), {"samples": [], "ref": "r"})
    assert run.status == "SUCCEEDED" and run.execution.output["aligned"] == []


def parallel_definition(**fields) -> dict:
    return {
        "StartAt": "Fork",
        "States": {
            "Fork": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Call", "States": {"Call": task(Next="Annotate"), "Annotate": task(End=True)}},
                    {"StartAt": "Stats", "States": {"Stats": task(End=True)}},
                ],
                "End": True,
                **fields,
            }
        },
    }


def test_parallel_results_in_branch_order():
    run = Driver(parallel_definition(), {"name": "s1"})
    run.succeed(run.task("Stats"), "stats")
    run.succeed(run.task("Call"), {"name": "s1.vcf"})
    assert run.status == "RUNNING"
    assert run.task("Annotate").parameters["JobName"] == "s1.vcf"
    run.succeed(run.task("Annotate"), "annotated")
    assert run.status == "SUCCEEDED" and run.execution.output == ["annotated", "stats"]


def test_parallel_failing_branch_cancels_its_siblings():
    run = Driver(parallel_definition(), {"name": "s1"})
    stats = run.task("Stats")
    run.fail(run.task("Call"), "States.TaskFailed", "caller crashed")
    assert stats.token in run.cancelled
    assert (run.status, run.execution.error, run.execution.cause) == ("FAILED", "States.TaskFailed", "caller crashed")
    assert "ParallelStateFailed" in run.types()


def test_stop_execution_cancels_running_tasks_and_keeps_error_and_cause():
    run = Driver(map_definition(), {"samples": ["a", "b"], "ref": "r"})
    running = [t.token for t in run.tasks_of("Align")]
    commands = run.send(StopRequested("User.Stop", "no longer needed"))
    assert sorted(c.token for c in commands if isinstance(c, CancelTask)) == sorted(running)
    assert (run.status, run.execution.error, run.execution.cause) == ("ABORTED", "User.Stop", "no longer needed")
    assert run.history[-1]["type"] == "ExecutionAborted"
    assert run.history[-1]["executionAbortedEventDetails"] == {"error": "User.Stop", "cause": "no longer needed"}
    assert run.send(TaskSucceeded(running[0], "late")) == []


def test_execution_timeout_times_out_and_cancels():
    definition = {**one_task(), "TimeoutSeconds": 60}
    run = Driver(definition, {"name": "x"}, now=0.0)
    work = run.task()
    assert list(run.timers.values()) == [60.0]
    run.fire_next_timer()
    assert run.status == "TIMED_OUT" and work.token in run.cancelled
    assert run.history[-1]["type"] == "ExecutionTimedOut"


def test_execution_state_round_trips_through_json():
    run = Driver(map_definition(MaxConcurrency=1), {"samples": ["a", "b"], "ref": "r"})
    data = run.execution.to_dict()
    assert Execution.from_dict(json.loads(json.dumps(data))).to_dict() == data


REPLAY_DEFINITION = {
    "StartAt": "Tag",
    "States": {
        "Tag": {"Type": "Pass", "Parameters": {"id.$": "States.UUID()", "samples.$": "$.samples"}, "Next": "Samples"},
        "Samples": {
            "Type": "Map",
            "ItemsPath": "$.samples",
            "MaxConcurrency": 2,
            "ItemProcessor": {
                "StartAt": "Align",
                "States": {
                    "Align": {
                        "Type": "Task",
                        "Resource": BATCH,
                        "Parameters": {
                            "JobName.$": "$",
                            "Token.$": "$$.Task.Token",
                            "Rand.$": "States.MathRandom(0, 1000)",
                        },
                        "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2, "JitterStrategy": "FULL"}],
                        "Next": "Fork",
                    },
                    "Fork": {
                        "Type": "Parallel",
                        "End": True,
                        "Branches": [
                            {"StartAt": "Call", "States": {"Call": {"Type": "Task", "Resource": BATCH, "End": True}}},
                            {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 5, "End": True}}},
                        ],
                    },
                },
            },
            "End": True,
        },
    },
}


def drive_replay_scenario() -> Driver:
    """A run with retries, jitter, waits, a failure and a redrive, answered in a fixed order."""
    from genobatch.workflow import RedriveRequested

    run = Driver(REPLAY_DEFINITION, {"samples": ["a", "b", "c"]}, seed=99, now=0.0)
    step = 0
    while run.status == "RUNNING":
        step += 1
        run.now += 1
        if run.tasks:
            token = sorted(run.tasks)[0]
            work = run.tasks[token]
            if step % 4 == 0:
                run.fail(work, "States.TaskFailed", f"flaky {step}")
            else:
                run.succeed(work, {"out": token})
        else:
            run.fire_next_timer()
        if run.status == "FAILED" and run.execution.redrive_count == 0:
            run.send(RedriveRequested(), at=run.now + 1)
    return run


def test_replay_of_the_persisted_events_gives_the_same_state_commands_and_history():
    original = drive_replay_scenario()
    assert original.execution.redrive_count >= 1
    stored = [(to_dict(event), now) for event, now in original.applied]
    execution, commands, history = None, [], []
    for data, now in json.loads(json.dumps(stored)):
        execution, more_commands, more_history = apply(original.definition, execution, event_from_dict(data), now)
        commands += more_commands
        history += more_history
    assert commands == original.commands
    assert history == original.history
    assert execution.to_dict() == original.execution.to_dict()
    tokens = [c.token for c in commands if isinstance(c, RunTask)]
    assert len(tokens) == len(set(tokens))  # unique over the whole life, redrive included


def test_resuming_from_a_snapshot_matches_a_full_replay():
    original = drive_replay_scenario()
    half = len(original.applied) // 2
    execution = None
    for event, now in original.applied[:half]:
        execution, _, _ = apply(original.definition, execution, event, now)
    snapshot = Execution.from_dict(json.loads(json.dumps(execution.to_dict())))
    for event, now in original.applied[half:]:
        snapshot, _, _ = apply(original.definition, snapshot, event, now)
    assert snapshot.to_dict() == original.execution.to_dict()


def test_a_map_of_1000_items_runs_with_bounded_per_event_work():
    run = Driver(map_definition(MaxConcurrency=100), {"samples": [f"s{i}" for i in range(1000)], "ref": "r"})
    started = time.perf_counter()
    while run.tasks:
        work = next(iter(run.tasks.values()))
        run.succeed(work, "ok")
    elapsed = time.perf_counter() - started
    assert run.status == "SUCCEEDED" and len(run.execution.output["aligned"]) == 1000
    assert len(json.dumps(run.execution.to_dict())) < 200_000
    print(f"1,000-iteration Map: {elapsed:.3f} s for 1,000 task completions")
    tokens = [c.token for c in run.commands if isinstance(c, RunTask)]
    assert len(set(tokens)) == 1000
    assert run.timers == {}


def test_retry_of_a_map_state_reruns_every_iteration_with_fresh_tokens():
    definition = map_definition(Retry=[{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 1, "IntervalSeconds": 1}])
    run = Driver(definition, {"samples": ["a", "b"], "ref": "r"})
    first = run.tasks_of("Align")
    run.succeed(first[0], "A")
    run.fail(first[1])
    assert run.status == "RUNNING" and run.tasks == {}
    run.fire_next_timer()
    second = run.tasks_of("Align")
    assert [t.parameters["JobName"] for t in second] == ["a", "b"]  # a Retry runs the whole state again
    assert not {t.token for t in second} & {t.token for t in first}
    for work in second:
        run.succeed(work, work.parameters["JobName"].upper())
    assert run.status == "SUCCEEDED" and run.execution.output["aligned"] == ["A", "B"]


def test_jsonpath_assign_sets_variables_later_states_read():
    definition = {
        "StartAt": "Align",
        "States": {
            "Align": task(Assign={"bam.$": "$.path", "sample.$": "$$.Execution.Input.name"}, Next="Call"),
            "Call": {
                "Type": "Task",
                "Resource": BATCH,
                "Parameters": {"bam.$": "$bam", "name.$": "States.Format('call-{}', $sample)"},
                "End": True,
            },
        },
    }
    run = Driver(definition, {"name": "s1"})
    run.succeed(run.task("Align"), {"path": "s3://b/s1.bam"})
    assert run.task("Call").parameters == {"bam": "s3://b/s1.bam", "name": "call-s1"}


def test_fail_state_error_and_cause_paths():
    definition = {"StartAt": "Stop", "States": {"Stop": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}}}
    run = Driver(definition, {"e": "Pipeline.Bad", "c": "sample s2 has no reads"})
    assert (run.status, run.execution.error, run.execution.cause) == (
        "FAILED",
        "Pipeline.Bad",
        "sample s2 has no reads",
    )
    assert run.types() == ["ExecutionStarted", "FailStateEntered", "ExecutionFailed"]


def test_long_chains_and_maps_of_pass_states_do_not_exhaust_the_stack():
    loop = {
        "StartAt": "Count",
        "States": {
            "Count": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "More?"},
            "More?": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericLessThan": 1000, "Next": "Count"}],
                      "Default": "Done"},
            "Done": {"Type": "Succeed"},
        },
    }  # fmt: skip
    run = Driver(loop, {"n": 0})
    assert run.status == "SUCCEEDED" and run.execution.output == {"n": 1000}
    each = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemProcessor": {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}},
                "End": True,
            }
        },
    }
    run = Driver(each, list(range(1000)))
    assert run.status == "SUCCEEDED" and run.execution.output == list(range(1000))


def test_an_iteration_failing_at_once_aborts_the_others_and_a_redrive_runs_them():
    from genobatch.workflow import RedriveRequested

    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemProcessor": {
                    "StartAt": "Check",
                    "States": {
                        "Check": {
                            "Type": "Choice",
                            "Choices": [{"Variable": "$.ok", "BooleanEquals": False, "Next": "Bad"}],
                            "Default": "Work",
                        },
                        "Bad": {"Type": "Fail", "Error": "Sample.Bad", "Cause": "bad sample"},
                        "Work": task(End=True),
                    },
                },
                "End": True,
            }
        },
    }
    run = Driver(definition, [{"name": "a", "ok": False}, {"name": "b", "ok": True}])
    assert (run.status, run.execution.error) == ("FAILED", "Sample.Bad")
    assert run.tasks == {}  # b was aborted before its task was scheduled
    run.send(RedriveRequested())
    assert run.status == "FAILED"  # a fails again (same input), so b is aborted again


@pytest.mark.parametrize(
    ("limits", "failures", "status"),
    [
        ({"ToleratedFailurePercentage": 50}, 2, "SUCCEEDED"),
        ({"ToleratedFailurePercentage": 50}, 3, "FAILED"),
        ({"ToleratedFailureCount": 3, "ToleratedFailurePercentage": 25}, 2, "FAILED"),  # either exceeded fails
        ({"ToleratedFailureCount": 3, "ToleratedFailurePercentage": 75}, 3, "SUCCEEDED"),
    ],
)
def test_map_tolerated_failure_percentage_and_both_limits(limits, failures, status):
    run = Driver(map_definition(**limits), {"samples": ["a", "b", "c", "d"], "ref": "r"})
    tasks = run.tasks_of("Align")
    for work in tasks[:failures]:
        run.fail(work)
    for work in tasks[failures:]:
        if work.token in run.tasks:
            run.succeed(work, "ok")
    assert run.status == status

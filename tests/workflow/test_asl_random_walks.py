"""Random walks through a pipeline with Map, Parallel, Retry, Catch, Wait and timeouts: answers in
random order, failures, timeouts, stops and redrives. Whatever happens, the core must never raise,
never stall (a RUNNING execution always waits on a task or a timer), leave nothing outstanding
once finished, issue every task token once, and replay to the same result."""

from __future__ import annotations

import json
import random

import pytest
from asl_driver import Driver

from genobatch.workflow import RedriveRequested, RunTask, StopRequested, apply, event_from_dict, redrivable
from genobatch.workflow.events import to_dict

pytestmark = pytest.mark.no_store  # pure core: the PostgreSQL pass would only repeat it

BATCH = "arn:aws:states:::batch:submitJob.sync"


def job(step: str, **extra) -> dict:
    return {"Type": "Task", "Resource": BATCH, "Parameters": {"JobName.$": f"States.Format('{step}-{{}}', $)"}, **extra}


PIPELINE = {
    "StartAt": "PerSample",
    "TimeoutSeconds": 5000,
    "States": {
        "PerSample": {
            "Type": "Map",
            "MaxConcurrency": 2,
            "ToleratedFailureCount": 1,
            "ItemProcessor": {
                "StartAt": "Align",
                "States": {
                    "Align": job(
                        "align",
                        ResultPath=None,
                        TimeoutSeconds=100,
                        Retry=[{"ErrorEquals": ["States.Timeout"], "MaxAttempts": 1, "IntervalSeconds": 5}],
                        Next="Fork",
                    ),
                    "Fork": {
                        "Type": "Parallel",
                        "ResultPath": None,
                        "Catch": [{"ErrorEquals": ["Caller.Bad"], "ResultPath": "$.error", "Next": "Pause"}],
                        "Next": "Pause",
                        "Branches": [
                            {
                                "StartAt": "Call",
                                "States": {
                                    "Call": job("call", ResultPath=None, Next="Evaluate"),
                                    "Evaluate": job("eval", End=True),
                                },
                            },
                            {"StartAt": "Stats", "States": {"Stats": job("stats", End=True)}},
                        ],
                    },
                    "Pause": {"Type": "Wait", "Seconds": 10, "End": True},
                },
            },
            "End": True,
        }
    },
}


def walk(seed: int) -> Driver:
    rng = random.Random(seed)
    run = Driver(PIPELINE, ["s1", "s2", "s3", "s4"], seed=seed, now=0.0)
    for _ in range(400):
        if run.status != "RUNNING":
            assert run.execution.pending == {} and run.tasks == {} and run.timers == {}
            if redrivable(run.execution, run.now) is None and rng.random() < 0.7:
                run.send(RedriveRequested(), at=run.now + 1)
                continue
            break
        assert run.tasks or run.timers, "a RUNNING execution waits on nothing: it would never finish"
        roll = rng.random()
        run.now += rng.choice([0.5, 1, 3])
        if run.tasks and roll < 0.75:
            work = run.tasks[rng.choice(sorted(run.tasks))]
            outcome = rng.random()
            if outcome < 0.12:
                run.fail(work, "States.TaskFailed", "exit 1")
            elif outcome < 0.18:
                run.fail(work, "Caller.Bad", "bad call")
            else:
                run.succeed(work, {"done": work.parameters["JobName"]})
        elif roll < 0.97 or not run.tasks:
            run.fire_next_timer()
        else:
            run.send(StopRequested("Stop", "random stop"))
    return run


@pytest.mark.parametrize("seed", range(40))
def test_random_walk_keeps_the_invariants_and_replays(seed):
    run = walk(seed)
    tokens = [c.token for c in run.commands if isinstance(c, RunTask)]
    assert len(tokens) == len(set(tokens))
    assert [e["id"] for e in run.history] == list(range(1, len(run.history) + 1))
    execution, commands, history = None, [], []
    for data, now in json.loads(json.dumps([(to_dict(event), now) for event, now in run.applied])):
        execution, more_commands, more_history = apply(run.definition, execution, event_from_dict(data), now)
        commands += more_commands
        history += more_history
    assert (commands, history) == (run.commands, run.history)
    assert execution.to_dict() == run.execution.to_dict()


def test_random_walks_reach_every_ending():
    endings = {walk(seed).status for seed in range(40)}
    assert {"SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"} <= endings, endings

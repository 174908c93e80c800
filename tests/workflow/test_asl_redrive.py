"""RedriveExecution (API_RedriveExecution): only the failed/aborted work runs again, succeeded
states' results are reused, same input, redriveCount + 1, ExecutionRedriven, AWS's eligibility."""

from __future__ import annotations

import json

import pytest
from asl_driver import Driver

from genobatch.workflow import RedriveRequested, RunTask, StopRequested, redrivable

pytestmark = pytest.mark.no_store  # pure core: the PostgreSQL pass would only repeat it

BATCH = "arn:aws:states:::batch:submitJob.sync"
DAY = 24 * 3600.0


def task(**extra) -> dict:
    return {"Type": "Task", "Resource": BATCH, **extra}


def run_tasks_after(run: Driver, mark: int) -> list[RunTask]:
    return [command for command in run.commands[mark:] if isinstance(command, RunTask)]


def test_succeeded_task_before_the_failure_is_not_rerun():
    definition = {
        "StartAt": "Align",
        "TimeoutSeconds": 3600,
        "States": {
            "Align": task(ResultPath="$.bam", Next="Call"),
            "Call": task(ResultPath="$.vcf", End=True),
        },
    }
    run = Driver(definition, {"sample": "NA12878"}, now=0.0)
    run.succeed(run.task("Align"), "s3://bam")
    failed_call = run.task("Call")
    run.fail(failed_call, "States.TaskFailed", "caller ran out of memory")
    assert (run.status, run.execution.error) == ("FAILED", "States.TaskFailed")
    assert redrivable(run.execution, run.now) is None

    mark = len(run.commands)
    run.send(RedriveRequested(), at=500.0)
    assert run.status == "RUNNING" and run.execution.redrive_count == 1 and run.execution.redrive_date == 500.0
    assert run.history[-3]["type"] == "ExecutionRedriven"
    assert run.history[-3]["executionRedrivenEventDetails"] == {"redriveCount": 1}
    rerun = run_tasks_after(run, mark)
    assert [t.token.split("@")[0] for t in rerun] == ["/Call"]
    assert rerun[0].token != failed_call.token and rerun[0].parameters == failed_call.parameters
    assert run.timers and min(run.timers.values()) == 500.0 + 3600  # the execution timeout restarts
    run.succeed(rerun[0], "s3://vcf")
    assert run.status == "SUCCEEDED"
    assert run.execution.output == {"sample": "NA12878", "bam": "s3://bam", "vcf": "s3://vcf"}
    assert run.execution.input == {"sample": "NA12878"}


def test_map_with_3_of_10_iterations_failed_reruns_only_those():
    definition = {
        "StartAt": "Samples",
        "States": {
            "Samples": {
                "Type": "Map",
                "ItemsPath": "$.samples",
                "ItemProcessor": {"StartAt": "Align", "States": {"Align": task(End=True)}},
                "End": True,
            }
        },
    }
    run = Driver(definition, {"samples": [f"s{i}" for i in range(10)]})
    tasks = {t.parameters: t for t in run.tasks_of("Align")}
    for index in (0, 1, 2, 4, 5, 7, 8):
        run.succeed(tasks[f"s{index}"], f"bam-{index}")
    run.fail(tasks["s3"], "States.TaskFailed", "bad s3")  # fails the Map; s6 and s9 are aborted
    assert {tasks["s6"].token, tasks["s9"].token} <= set(run.cancelled)
    assert run.status == "FAILED"

    mark = len(run.commands)
    run.send(RedriveRequested())
    rerun = run_tasks_after(run, mark)
    assert sorted(t.parameters for t in rerun) == ["s3", "s6", "s9"]
    for work in rerun:
        run.succeed(work, f"bam-{work.parameters[1:]}")
    assert run.status == "SUCCEEDED"
    assert run.execution.output == [f"bam-{i}" for i in range(10)]
    started = [e for e in run.history if e["type"] == "MapIterationStarted"]
    assert len(started) == 10 + 3


def test_map_redrive_honours_max_concurrency_and_resumes_unstarted_iterations():
    definition = {
        "StartAt": "Samples",
        "States": {
            "Samples": {
                "Type": "Map",
                "MaxConcurrency": 2,
                "ItemProcessor": {"StartAt": "Align", "States": {"Align": task(End=True)}},
                "End": True,
            }
        },
    }
    run = Driver(definition, ["a", "b", "c", "d"])
    first, second = run.tasks_of("Align")
    run.succeed(first, "A")
    run.fail(second, "States.TaskFailed", "b broke")
    # c was started when a finished; the failure of b aborted c; d never started.
    assert run.status == "FAILED"
    mark = len(run.commands)
    run.send(RedriveRequested())
    assert sorted(t.parameters for t in run_tasks_after(run, mark)) == ["b", "c"]
    while run.tasks:
        work = next(iter(run.tasks.values()))
        assert len(run.tasks) <= 2
        run.succeed(work, work.parameters.upper())
    assert run.status == "SUCCEEDED" and run.execution.output == ["A", "B", "C", "D"]


def test_parallel_with_one_failed_branch_reruns_only_it():
    definition = {
        "StartAt": "Fork",
        "States": {
            "Fork": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Call", "States": {"Call": task(Next="Annotate"), "Annotate": task(End=True)}},
                    {"StartAt": "Stats", "States": {"Stats": task(End=True)}},
                ],
                "End": True,
            }
        },
    }
    run = Driver(definition, {"sample": "s"})
    run.succeed(run.task("Stats"), "stats")
    run.succeed(run.task("Call"), {"vcf": "v"})
    annotate = run.task("Annotate")
    run.fail(annotate, "States.TaskFailed", "snpeff crashed")
    assert run.status == "FAILED"
    mark = len(run.commands)
    run.send(RedriveRequested())
    rerun = run_tasks_after(run, mark)
    assert len(rerun) == 1 and "/Annotate@" in rerun[0].token and rerun[0].parameters == {"vcf": "v"}
    run.succeed(rerun[0], "annotated")
    assert run.status == "SUCCEEDED" and run.execution.output == ["annotated", "stats"]


def job(step: str, **extra) -> dict:
    """A Batch task whose job name is ``<step>-<sample>`` (the state input is the sample name)."""
    return task(Parameters={"JobName.$": f"States.Format('{step}-{{}}', $)"}, **extra)


GENOMICS = {
    "StartAt": "PerSample",
    "States": {
        "PerSample": {
            "Type": "Map",
            "ItemsPath": "$.samples",
            "ItemProcessor": {
                "StartAt": "Align",
                "States": {
                    "Align": job("align", ResultPath=None, Next="Fork"),
                    "Fork": {
                        "Type": "Parallel",
                        "End": True,
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
                },
            },
            "End": True,
        }
    },
}


def test_genomics_pipeline_redrive_reruns_only_the_failed_samples_failed_step():
    """The seed workflow's shape: per-sample Map { align -> Parallel { call -> evaluate ; stats } }."""
    run = Driver(GENOMICS, {"samples": ["s1", "s2", "s3"]})
    submitted: list[str] = []

    def answer_all(fail: str | None = None) -> None:
        while run.tasks and run.status == "RUNNING":
            # The failing job is answered last, so that nothing else is running (and aborted) then.
            work = sorted(run.tasks.values(), key=lambda t: (t.parameters["JobName"] == fail, t.token))[0]
            submitted.append(work.parameters["JobName"])
            if work.parameters["JobName"] == fail:
                run.fail(work, "States.TaskFailed", "Essential container in task exited")
            else:
                run.succeed(work, f"out-{work.parameters['JobName']}")

    answer_all(fail="call-s2")
    assert run.status == "FAILED"
    assert "call-s2" in submitted
    before = len(submitted)
    run.send(RedriveRequested())
    answer_all()
    assert run.status == "SUCCEEDED"
    assert submitted[before:] == ["call-s2", "eval-s2"]  # not align-s2, not stats-s2, nothing of s1/s3
    assert run.execution.output == [[f"out-eval-{s}", f"out-stats-{s}"] for s in ("s1", "s2", "s3")]


def test_aborted_execution_redrives_the_aborted_task():
    run = Driver({"StartAt": "Work", "States": {"Work": task(End=True)}}, {"n": 1})
    aborted = run.task()
    run.send(StopRequested("Stopped", "by user"))
    assert run.status == "ABORTED" and redrivable(run.execution, run.now) is None
    run.send(RedriveRequested())
    again = run.task()
    assert again.token != aborted.token and again.parameters == aborted.parameters
    run.succeed(again, "done")
    assert run.status == "SUCCEEDED" and run.execution.redrive_count == 1


def test_timed_out_execution_is_redrivable_and_a_second_redrive_counts_two():
    run = Driver({"StartAt": "Work", "TimeoutSeconds": 10, "States": {"Work": task(End=True)}}, {}, now=0.0)
    run.fire_next_timer()
    assert run.status == "TIMED_OUT"
    run.send(RedriveRequested(), at=20.0)
    run.fail(run.task())
    run.send(RedriveRequested(), at=30.0)
    assert run.execution.redrive_count == 2
    run.succeed(run.task(), "ok")
    assert run.status == "SUCCEEDED"


def test_eligibility_rules():
    run = Driver({"StartAt": "Work", "States": {"Work": task(End=True)}}, {}, now=0.0)
    assert "RUNNING" in redrivable(run.execution, 1.0)
    run.succeed(run.task(), "ok")
    assert "SUCCEEDED" in redrivable(run.execution, 1.0)
    before = run.execution.to_dict()
    assert run.send(RedriveRequested()) == []  # a redrive of a SUCCEEDED execution changes nothing
    assert run.execution.to_dict() == before

    run = Driver({"StartAt": "Work", "States": {"Work": task(End=True)}}, {}, now=0.0)
    run.fail(run.task())
    assert redrivable(run.execution, 13 * DAY) is None
    assert "14 days" in redrivable(run.execution, 15 * DAY)
    run.execution.next_event_id = 25_000
    assert redrivable(run.execution, 1.0) == "Execution history event limit exceeded"


def test_a_failure_deep_in_the_pipeline_cancels_every_running_job_and_redrive_finishes_the_rest():
    run = Driver(GENOMICS, {"samples": ["s1", "s2"]})
    for work in run.tasks_of("Align"):
        run.succeed(work, "bam")
    running = {t.parameters["JobName"]: t for t in run.tasks.values()}
    assert sorted(running) == ["call-s1", "call-s2", "stats-s1", "stats-s2"]
    run.fail(running["call-s2"], "States.TaskFailed", "Essential container in task exited")
    assert run.status == "FAILED" and run.tasks == {}
    assert sorted(run.cancelled) == sorted(running[name].token for name in ("call-s1", "stats-s1", "stats-s2"))
    mark = len(run.commands)
    run.send(RedriveRequested())
    assert sorted(t.parameters["JobName"] for t in run_tasks_after(run, mark)) == [
        "call-s1", "call-s2", "stats-s1", "stats-s2",
    ]  # fmt: skip
    while run.tasks:
        work = next(iter(run.tasks.values()))
        run.succeed(work, f"out-{work.parameters['JobName']}")
    assert run.status == "SUCCEEDED"
    assert run.execution.output == [["out-eval-s1", "out-stats-s1"], ["out-eval-s2", "out-stats-s2"]]
    assert [t.parameters["JobName"] for t in run.commands if isinstance(t, RunTask)].count("align-s2") == 1


def test_a_job_that_succeeds_after_its_abort_is_reused_by_the_redrive_not_run_again():
    """A sibling's failure aborts a task whose job was just ending: if that job then reports
    SUCCEEDED, the redrive takes its output instead of submitting the job again."""
    run = Driver(GENOMICS, {"samples": ["s1", "s2"]})
    for work in run.tasks_of("Align"):
        run.succeed(work, "bam")
    running = {t.parameters["JobName"]: t for t in run.tasks.values()}
    run.succeed(running["stats-s1"], "out-stats-s1")
    run.fail(running["call-s2"], "States.TaskFailed", "Essential container in task exited")
    assert run.status == "FAILED" and running["call-s1"].token in run.cancelled
    history_length = len(run.history)
    assert run.succeed(running["call-s1"], "vcf-s1") == []  # late: no commands, no history...
    assert len(run.history) == history_length and run.status == "FAILED"
    run.fail(running["stats-s2"], "States.TaskFailed", "terminated")  # ...and a late failure changes nothing

    mark = len(run.commands)
    run.send(RedriveRequested())
    assert sorted(t.parameters["JobName"] for t in run_tasks_after(run, mark)) == ["call-s2", "eval-s1", "stats-s2"]
    reused = [e for e in run.history[history_length:] if e["type"] == "TaskSucceeded"]
    assert [json.loads(e["taskSucceededEventDetails"]["output"]) for e in reused] == ["vcf-s1"]
    while run.tasks:
        work = next(iter(run.tasks.values()))
        run.succeed(work, f"out-{work.parameters['JobName']}")
    assert run.status == "SUCCEEDED"
    assert run.execution.output == [["out-eval-s1", "out-stats-s1"], ["out-eval-s2", "out-stats-s2"]]
    names = [t.parameters["JobName"] for t in run.commands if isinstance(t, RunTask)]
    assert names.count("call-s1") == 1 and names.count("stats-s1") == 1


def test_a_late_success_after_the_redrive_began_does_not_replace_the_rerun():
    run = Driver({"StartAt": "Fork", "States": {"Fork": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "A", "States": {"A": task(End=True)}},
        {"StartAt": "B", "States": {"B": task(End=True)}},
    ]}}}, {})  # fmt: skip
    first_a, first_b = run.task("A"), run.task("B")
    run.fail(first_b)
    run.send(RedriveRequested())
    run.succeed(first_a, "too late")  # the redrive already runs A again
    again_a = run.task("A")
    assert again_a.token != first_a.token
    run.succeed(again_a, "a")
    run.succeed(run.task("B"), "b")
    assert run.status == "SUCCEEDED" and run.execution.output == ["a", "b"]


def test_an_iteration_whose_aborted_tasks_all_succeeded_late_finishes_once_within_the_redrive():
    """Every task an iteration still waited for when the Map failed succeeded late: the redrive
    completes that iteration from the kept results alone. Doing so inside the Map's own start loop
    completed its Parallel twice (a KeyError on the second, CI at 132be6e); now a redriven child
    runs from the entry queue like any entered state."""
    run = Driver(GENOMICS, {"samples": ["s1", "s2"]})
    for work in run.tasks_of("Align"):
        run.succeed(work, "bam")
    running = {t.parameters["JobName"]: t for t in run.tasks.values()}
    run.succeed(running["call-s1"], "vcf-s1")
    running = {t.parameters["JobName"]: t for t in run.tasks.values()}  # eval-s1 is running now
    run.fail(running["call-s2"], "States.TaskFailed", "Essential container in task exited")
    assert run.status == "FAILED"
    run.succeed(running["eval-s1"], "late-eval-s1")
    run.succeed(running["stats-s1"], "late-stats-s1")

    mark = len(run.commands)
    run.send(RedriveRequested())
    assert run.status == "RUNNING"
    assert sorted(t.parameters["JobName"] for t in run_tasks_after(run, mark)) == ["call-s2", "stats-s2"]
    iteration_ends = [e for e in run.history if e["type"] == "MapIterationSucceeded"]
    assert [e["mapIterationSucceededEventDetails"]["index"] for e in iteration_ends] == [0]
    while run.tasks:
        work = next(iter(run.tasks.values()))
        run.succeed(work, f"out-{work.parameters['JobName']}")
    assert run.status == "SUCCEEDED"
    assert run.execution.output[0] == ["late-eval-s1", "late-stats-s1"]
    names = [t.parameters["JobName"] for t in run.commands if isinstance(t, RunTask)]
    assert names.count("eval-s1") == 1 and names.count("stats-s1") == 1

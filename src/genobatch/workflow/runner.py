"""The workflow runner: the imperative shell around the pure interpreter (:mod:`genobatch.workflow.interpreter`).

One thread owns every execution. Items arrive in an inbox - API write calls (StartExecution,
StopExecution, RedriveExecution, state machine changes), submitted or terminated Batch jobs, due
timers - and the thread takes whatever has arrived, feeds the events to ``apply`` and writes, in
one transaction per batch: each event with its clock reading (the input event log), the history
events, the execution's columns, and the commands as durable intents (``sfn_tasks`` rows for
RunTask/CancelTask, ``sfn_timers`` rows for timers). Only after the commit are the commands carried
out, so nothing happens that the store does not know about.

Crash safety (``kill -9`` at any point): on start every RUNNING execution is rebuilt from its
snapshot plus the events logged after it (replay: ``apply`` is deterministic), open task rows are
resumed - a task whose job id was recorded is tracked again, one without is looked up by its tag
``genobatch:workflow-task=<token>`` (written in the SubmitJob's own transaction) and adopted if
the job exists, submitted only if it does not - and stored timers are re-armed. So a job is never
submitted twice.

Job completion is observed every ``poll_interval_s`` (:mod:`genobatch.workflow.job_watch`): the
watched jobs the engine's scheduler no longer holds as live are read from the store (no per-job
polling, and no hook in the engine).
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import math
import queue
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from genobatch.api import job_queries, jobs
from genobatch.api.errors import ApiError, ServerException
from genobatch.context import Context
from genobatch.engine import Engine, drain, now_ms
from genobatch.workflow import batch_task
from genobatch.workflow import store as wf
from genobatch.workflow.definition import StateMachineDefinition, parse_definition
from genobatch.workflow.events import (
    CancelTask,
    CancelTimer,
    RunTask,
    StartTimer,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    TimerFired,
    event_from_dict,
    to_dict,
)
from genobatch.workflow.interpreter import Execution, apply
from genobatch.workflow.job_watch import EndedJob, JobWatch
from genobatch.workflow.runner_state import (
    UNREBUILDABLE,
    Call,
    Live,
    Pending,
    Submitted,
    Task,
    columns,
    end_unrecoverable,
    finish_deleting,
    settle,
    submission,
)

log = logging.getLogger("genobatch.workflow")
BATCH_LIMIT = 2000
POLL_INTERVAL_S = 0.2
# A snapshot is written once the events since the last one outnumber both of these, so that a
# restart replays few events while a big state (a 1,000-item Map: 1,000 frames and result slots,
# ~0.5 MB of JSON, tens of ms to write on the engine thread) is not rewritten every few hundred
# events: replaying an event costs about what writing a few state slots does.
SNAPSHOT_EVERY_EVENTS = 500
SNAPSHOT_EVENTS_PER_SLOT = 2
TERMINATE_REASON = "Step Functions task stopped"
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"})


class RunnerContext:
    """What a write handler gets on the runner thread: the transaction, the clock, and ``feed``."""

    def __init__(self, runner: WorkflowRunner, conn: Any, now: float) -> None:
        self.runner = runner
        self.conn = conn
        self.now = now  # seconds since the epoch, as apply's clock
        self.settings = runner.engine.settings

    @property
    def now_ms(self) -> int:
        return int(self.now * 1000)

    def feed(self, arn: str, event: Any) -> Execution:
        """Apply ``event`` to execution ``arn`` now (written with this batch); returns the new state."""
        return self.runner._feed(self, arn, event)

    def live_execution(self, arn: str) -> Execution | None:
        """The interpreter state of ``arn`` (loaded from the store if it is not being driven)."""
        live = self.runner._live_or_load(self.conn, arn)
        return live.execution if live else None

    def settle_ended_tasks(self, arn: str) -> None:
        """Report the jobs of ``arn``'s tasks that have ended but not been polled yet (before a
        redrive: a cancelled task's job that succeeded meanwhile is then reused, not run again)."""
        self.runner._settle(self, arn)

    def new_seed(self) -> int:
        return random.getrandbits(31)


class WorkflowRunner:
    """Drives every execution; see the module docstring."""

    def __init__(self, engine: Engine, poll_interval_s: float = POLL_INTERVAL_S) -> None:
        self.engine = engine
        self.database = engine.database
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: dict[str, Live] = {}
        self._tasks: dict[tuple[str, str], Task] = {}
        self._watch = JobWatch(engine, poll_interval_s)  # the .sync tasks' jobs
        self._timers: list[tuple[int, str, str]] = []  # heap of (fire_at_ms, arn, token)
        self._timer_at: dict[tuple[str, str], int] = {}
        self._definitions: dict[str, StateMachineDefinition] = {}
        self._pending: dict[str, Pending] = {}
        self._task_updates: dict[tuple[str, str], tuple[str, str | None]] = {}  # written at the batch's end

    # ----------------------------------------------------------------- public
    def start(self) -> None:
        """Rebuild running executions from the store, resume their tasks and timers, start the thread."""
        after_commit = self._recover()
        self._thread = threading.Thread(target=self._run, name="genobatch-workflows", daemon=True)
        self._thread.start()
        self._inbox.put(("after", after_commit))

    def stop(self) -> None:
        self._stopping.set()
        self._inbox.put(None)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def call(self, handler: Callable[[RunnerContext, dict], dict], request: dict) -> Future:
        """Run a write operation on the runner thread; the future resolves after its commit."""
        future: Future = Future()
        self._inbox.put(Call(handler, request, future))
        return future

    def definition(self, text: str) -> StateMachineDefinition:
        """The parsed definition (cached: executions of one state machine share it)."""
        parsed = self._definitions.get(text)
        if parsed is None:
            parsed = parse_definition(text)
            if len(self._definitions) > 256:
                self._definitions.clear()
            self._definitions[text] = parsed
        return parsed

    # ----------------------------------------------------------------- loading
    def _load(self, conn: Any, row: dict) -> Live:
        """An execution's state: its snapshot, then the events logged after it, replayed."""
        definition = self.definition(row["definition"])
        execution = Execution.from_dict(row["snapshot"]) if row["snapshot"] is not None else None
        for record in wf.events_from(conn, row["arn"], row["snapshot_events"]):
            execution, _, _ = apply(definition, execution, event_from_dict(record["event"]), record["now"])
        return Live(
            row["arn"],
            row["name"],
            row["state_machine_arn"],
            definition,
            execution,
            row["event_count"],
            row["snapshot_events"],
        )

    def _live_or_load(self, conn: Any, arn: str) -> Live | None:
        live = self._live.get(arn)
        if live is None:
            row = wf.get_execution(conn, arn, snapshot=True)
            if row is None:
                return None
            try:
                live = self._load(conn, row)
            except Exception as exc:  # noqa: BLE001 - refuses this request only, not the whole batch
                log.exception("cannot rebuild execution %s", arn)
                raise ServerException(
                    f"the execution's state could not be rebuilt: {type(exc).__name__}: {exc}"
                ) from exc
            self._live[arn] = live
        return live

    def _recover(self) -> list:
        """Rebuild state after a start (or a failed commit); returns the work to do after it."""
        self._live.clear()
        self._tasks.clear()
        self._watch.clear()
        self._timers.clear()
        self._timer_at.clear()
        work: list = []
        with self.database.connect() as conn:  # reads only: the engine thread is the writer
            for row in wf.running_executions(conn):
                try:
                    self._live[row["arn"]] = self._load(conn, row)
                except Exception as exc:  # noqa: BLE001 - one broken execution must not keep the others down
                    log.exception("cannot rebuild execution %s; it ends FAILED", row["arn"])
                    # Ended in the next batch (this is a read connection); its tasks are cancelled below.
                    cause = f"{UNREBUILDABLE}: {type(exc).__name__}: {exc}"
                    self._inbox.put(("unrecoverable", row["arn"], cause))
            by_execution: dict[str, list[dict]] = {}
            for task in wf.open_tasks(conn):
                by_execution.setdefault(task["execution_arn"], []).append(task)
            for arn, tasks in by_execution.items():
                missing = [t["token"] for t in tasks if t["job_id"] is None]
                found = wf.jobs_tagged(
                    conn,
                    batch_task.TASK_TAG,
                    batch_task.EXECUTION_TAG,
                    arn,
                    [batch_task.task_tag(t) for t in missing],
                )
                for task in tasks:
                    key = (arn, task["token"])
                    job_id = task["job_id"] or found.get(batch_task.task_tag(task["token"]))
                    state = task["state"] if arn in self._live else wf.CANCELLING
                    self._tasks[key] = Task(task["resource"], state, job_id)
                    if state == wf.CANCELLING:
                        if job_id is not None and task["resource"] == batch_task.SUBMIT_JOB_SYNC:
                            self._watch.track(job_id, key)
                        work.append(("cancel", arn, task["token"]))
                    elif job_id is None:
                        work.append(("submit", arn, RunTask(task["token"], task["resource"], task["parameters"])))
                    elif task["state"] == wf.PENDING:
                        work.append(("adopt", arn, task["token"], job_id))
                    elif task["resource"] == batch_task.SUBMIT_JOB_SYNC:
                        self._watch.track(job_id, key)
                    else:
                        work.append(("adopt", arn, task["token"], job_id))
            for timer in wf.all_timers(conn):
                if timer["execution_arn"] in self._live:
                    self._arm(timer["execution_arn"], timer["token"], timer["fire_at_ms"])
        return work

    # ----------------------------------------------------------------- loop
    def _run(self) -> None:
        while not self._stopping.is_set():
            batch = self._collect()
            if self._stopping.is_set():
                break
            try:
                self._process(batch)
            except Exception:  # noqa: BLE001 - the runner must survive; the next batch tries again
                log.exception("workflow runner: unexpected failure")
                time.sleep(1)

    def _collect(self) -> list:
        timeout: float | None = None
        if self._timers:
            timeout = max(0.0, (self._timers[0][0] - now_ms()) / 1000)
        wait = self._watch.seconds_to_next_poll()
        if wait is not None:
            timeout = wait if timeout is None else min(timeout, wait)
        return drain(self._inbox, timeout, BATCH_LIMIT)

    def _process(self, batch: list) -> None:
        """Apply one batch in a transaction *on the engine thread*, then carry out its commands.

        The engine is the store's single writer: on SQLite a second writing thread would make the
        engine's transactions fail (a deferred transaction cannot upgrade to a write once another
        connection has committed since its first read). So the batch runs as an engine call, inside
        the engine's own transaction. If the engine has to retry it alone after a failed commit,
        the second run refuses (the interpreter state is already ahead of the store) and the runner
        rebuilds itself from the store instead.
        """
        finished = self._watch.poll()
        due = bool(self._timers) and self._timers[0][0] <= now_ms()
        if not batch and not finished and not due:
            return
        ran = []

        def run(ctx: Context, _request: dict) -> tuple[list, list]:
            if ran:
                raise ServerException("workflow batch retried by the engine; the runner rebuilds from the store")
            ran.append(True)
            return self._apply_batch(ctx.conn, batch, finished)

        try:
            results, work = self.engine.call(run, {}).result()
        except Exception:  # noqa: BLE001 - the store is the truth: rebuild from it, never guess
            log.exception("workflow batch failed; rebuilding from the store")
            for item in batch:
                if isinstance(item, Call):
                    settle(item.future, ServerException("internal error; the request was not applied"), False)
            self._pending, self._task_updates = {}, {}
            results, work = [], self._recover()
        for future, value, ok in results:
            settle(future, value, ok)
        self._carry_out(work)

    def _set_task(self, arn: str, token: str, state: str, job_id: str | None = None) -> None:
        """A task row's new state (and job id), written with the batch after its new task rows."""
        previous = self._task_updates.get((arn, token))
        self._task_updates[(arn, token)] = (state, job_id or (previous[1] if previous else None))

    def _apply_batch(self, conn: Any, batch: list, finished: list[EndedJob]) -> tuple[list, list]:
        results: list[tuple[Future, object, bool]] = []
        work: list = []
        self._pending = {}
        self._task_updates = {}
        ctx = RunnerContext(self, conn, time.time())
        for item in batch:
            if isinstance(item, Call):
                results.append((item.future, *self._apply_call(ctx, item)))
            elif isinstance(item, Submitted):
                work += self._submitted(ctx, item)
            elif isinstance(item, tuple) and item[0] == "after":
                work += item[1]
            elif isinstance(item, tuple) and item[0] == "unrecoverable" and item[1] not in self._live:
                end_unrecoverable(conn, item[1], item[2], ctx.now)
            elif isinstance(item, tuple) and item[0] == "terminated":
                self._terminated(ctx, item[1], item[2])
            elif isinstance(item, tuple) and item[0] == "fail":
                _, arn, token, error, cause = item
                self._close(ctx, arn, token)
                self.feed_event(ctx, arn, TaskFailed(token, error, cause))
        self._fire_timers(ctx)
        self._report_finished(ctx, finished)
        work += self._flush(conn)
        return results, work

    def _apply_call(self, ctx: RunnerContext, call: Call) -> tuple[object, bool]:
        """A write handler in a savepoint; a refused request (ApiError) leaves no trace.

        Handlers validate before they feed events, so a refusal has changed no interpreter state.
        """
        try:
            with ctx.conn.begin_nested():
                return call.handler(ctx, call.request), True
        except ApiError as error:
            return error, False

    # ----------------------------------------------------------------- feeding the interpreter
    def _feed(self, ctx: RunnerContext, arn: str, event: Any) -> Execution:
        live = self._live_or_load(ctx.conn, arn)
        if live is None:
            raise LookupError(f"execution {arn} does not exist")
        try:
            execution, commands, history = apply(live.definition, live.execution, event, ctx.now)
        except Exception as exc:  # noqa: BLE001 - an interpreter bug must not stall every other execution
            log.exception("the interpreter failed on %s for execution %s", type(event).__name__, arn)
            if live.execution is None:
                del self._live[arn]
                raise ServerException(f"internal error starting the execution: {exc}") from None
            # The event is not logged (a replay would fail the same way); the execution ends FAILED.
            execution = dataclasses.replace(
                live.execution,
                status="FAILED",
                error="States.Runtime",
                cause=f"genobatch internal error in the workflow interpreter: {type(exc).__name__}: {exc}",
                stop_date=ctx.now,
            )
            live.execution = execution
            pending = self._pending.setdefault(arn, Pending(first_seq=live.event_count))
            pending.commands += [CancelTask(token) for token in list(execution.pending)]
            return execution
        pending = self._pending.get(arn)
        if pending is None:
            pending = self._pending[arn] = Pending(first_seq=live.event_count)
        live.execution = execution
        live.event_count += 1
        pending.records.append({"event": to_dict(event), "now": ctx.now})
        for item in history:
            # The core does not know the region a task runs in; the shell does (AWS shows it here).
            scheduled = item.get("taskScheduledEventDetails")
            if scheduled is not None and not scheduled.get("region"):
                scheduled["region"] = ctx.settings.region
        pending.history += history
        pending.commands += commands
        return execution

    def _feed_late(self, ctx: RunnerContext, arn: str, event: Any) -> None:
        """Feed an event even to an execution that has ended (loaded from its snapshot if needed)."""
        try:
            self._feed(ctx, arn, event)
        except (LookupError, ServerException):
            log.warning("a late task result for execution %s was dropped: it is gone or cannot be rebuilt", arn)

    def feed_event(self, ctx: RunnerContext, arn: str, event: Any) -> None:
        """Feed an event from a task or timer; one for an execution no longer running is dropped."""
        live = self._live.get(arn)
        if live is None or live.execution is None or live.execution.status in TERMINAL:
            return
        self._feed(ctx, arn, event)

    def _flush(self, conn: Any) -> list:
        """Write what the batch did to each execution; return the commands to carry out after the commit."""
        work: list = []
        for arn, pending in self._pending.items():
            live = self._live[arn]
            execution = live.execution
            wf.append_events(conn, arn, pending.first_seq, pending.records)
            wf.append_history(conn, arn, pending.history)
            task_rows: list[dict] = []
            timer_rows: list[dict] = []
            dropped_timers: list[str] = []
            for command in pending.commands:
                key = (arn, command.token)
                if isinstance(command, RunTask):
                    if key not in self._tasks:
                        self._tasks[key] = Task(command.resource, wf.PENDING)
                        task_rows.append(
                            {
                                "execution_arn": arn,
                                "token": command.token,
                                "resource": command.resource,
                                "parameters": command.parameters,
                                "state": wf.PENDING,
                                "job_id": None,
                                "created_at": now_ms(),
                            }
                        )
                        work.append(("submit", arn, command))
                elif isinstance(command, CancelTask):
                    task = self._tasks.get(key)
                    if task is not None and task.state != wf.DONE:
                        # A .sync job stays tracked until it ends: one that succeeds regardless
                        # gives the interpreter a result a redrive can reuse.
                        task.state = wf.CANCELLING
                        self._set_task(arn, command.token, wf.CANCELLING)
                        work.append(("cancel", arn, command.token))
                elif isinstance(command, StartTimer):
                    fire_at_ms = math.ceil(command.fire_at * 1000)
                    timer_rows.append({"execution_arn": arn, "token": command.token, "fire_at_ms": fire_at_ms})
                    work.append(("timer", arn, command.token, fire_at_ms))
                elif isinstance(command, CancelTimer):
                    dropped_timers.append(command.token)
                    self._timer_at.pop(key, None)
            wf.insert_tasks(conn, task_rows)
            wf.delete_timers(conn, [(arn, token) for token in dropped_timers])
            wf.put_timers(conn, timer_rows)
            values: dict[str, Any] = {"event_count": live.event_count}
            if execution is not None:
                values.update(columns(execution))
                since = live.event_count - live.snapshot_events
                due = since >= SNAPSHOT_EVERY_EVENTS and since >= SNAPSHOT_EVENTS_PER_SLOT * execution.size()
                if execution.status in TERMINAL or due:
                    values.update(snapshot=execution.snapshot(), snapshot_events=live.event_count)
                    live.snapshot_events = live.event_count
            wf.update_execution(conn, arn, values)
            if execution is not None and execution.status in TERMINAL:
                del self._live[arn]  # reloaded (from the terminal snapshot) if redriven
                self._forget_timers(arn)
                finish_deleting(conn, live.state_machine_arn)
        wf.set_tasks(conn, [(arn, token, state, job) for (arn, token), (state, job) in self._task_updates.items()])
        self._pending, self._task_updates = {}, {}
        return work

    # ----------------------------------------------------------------- commands
    def _carry_out(self, work: list) -> None:
        for item in work:
            kind = item[0]
            try:
                if kind == "submit":
                    self._submit(item[1], item[2])
                elif kind == "adopt":
                    self._adopt(item[1], item[2], item[3])
                elif kind == "cancel":
                    self._cancel(item[1], item[2])
                elif kind == "timer":
                    self._arm(item[1], item[2], item[3])
            except Exception:  # noqa: BLE001 - logged; the durable rows let a restart retry it
                log.exception("workflow command %s failed", item[:3])

    def _submit(self, arn: str, command: RunTask) -> None:
        task = self._tasks.get((arn, command.token))
        if task is None or task.state != wf.PENDING or task.in_flight:
            return
        live = self._live.get(arn)
        if live is None:
            return
        if command.resource not in batch_task.RESOURCES:
            cause = f"genobatch runs Task resources {', '.join(batch_task.RESOURCES)} only, not {command.resource!r}"
            self._inbox.put(("fail", arn, command.token, "States.Runtime", cause))
            return
        try:
            request = batch_task.submit_request(command.parameters, arn, command.token)
        except batch_task.TaskError as error:
            self._inbox.put(("fail", arn, command.token, error.error, error.cause))
            return
        task.in_flight = True
        future = self.engine.call(jobs.submit_job, request)
        future.add_done_callback(lambda f, a=arn, t=command.token: self._inbox.put(submission(a, t, f)))

    def _adopt(self, arn: str, token: str, job_id: str) -> None:
        """A job found submitted for ``token`` after a restart: record it as if SubmitJob had just answered."""
        with self.database.connect() as conn:
            detail = job_queries.describe_jobs(Context(conn, self.engine.settings, now_ms()), {"jobs": [job_id]})
        job = detail["jobs"][0]
        response = {"jobArn": job["jobArn"], "jobName": job["jobName"], "jobId": job["jobId"]}
        self._inbox.put(Submitted(arn, token, response, None))

    def _cancel(self, arn: str, token: str) -> None:
        task = self._tasks.get((arn, token))
        if task is None or task.in_flight:
            return  # a submission in flight is terminated when it answers
        if task.job_id is None:
            self._inbox.put(("terminated", arn, token))
            return
        future = self.engine.call(jobs.terminate_job, {"jobId": task.job_id, "reason": TERMINATE_REASON})
        future.add_done_callback(lambda _f, a=arn, t=token: self._inbox.put(("terminated", a, t)))

    def _arm(self, arn: str, token: str, fire_at_ms: int) -> None:
        self._timer_at[(arn, token)] = fire_at_ms
        heapq.heappush(self._timers, (fire_at_ms, arn, token))

    def _forget_timers(self, arn: str) -> None:
        for key in [k for k in self._timer_at if k[0] == arn]:
            del self._timer_at[key]

    # ----------------------------------------------------------------- events from the world
    def _submitted(self, ctx: RunnerContext, item: Submitted) -> list:
        key = (item.arn, item.token)
        task = self._tasks.get(key)
        if task is None or (task.state == wf.SUBMITTED and task.job_id is not None):
            return []  # unknown, or already recorded (an adoption after a rebuild raced the answer)
        task.in_flight = False
        if item.error is not None:
            self._close(ctx, item.arn, item.token)
            if task.state != wf.CANCELLING:
                self.feed_event(ctx, item.arn, TaskFailed(item.token, "Batch." + item.error.code, item.error.message))
            return []
        response = item.response or {}
        task.job_id = response["jobId"]
        if task.state == wf.CANCELLING:
            self._set_task(item.arn, item.token, wf.CANCELLING, task.job_id)
            if task.resource == batch_task.SUBMIT_JOB_SYNC:
                self._watch.track(task.job_id, key)
            return [("cancel", item.arn, item.token)]
        self.feed_event(ctx, item.arn, TaskStarted(item.token, batch_task.submit_output(response)))
        if task.resource == batch_task.SUBMIT_JOB_SYNC:
            task.state = wf.SUBMITTED
            self._set_task(item.arn, item.token, wf.SUBMITTED, task.job_id)
            self._watch.track(task.job_id, key)
        else:
            self._set_task(item.arn, item.token, wf.DONE, task.job_id)
            self._tasks.pop(key, None)
            self.feed_event(ctx, item.arn, TaskSucceeded(item.token, batch_task.submit_output(response)))
        return []

    def _terminated(self, ctx: RunnerContext, arn: str, token: str) -> None:
        """TerminateJob answered for a cancelled task: a tracked .sync job is closed when it ends
        (it may have succeeded after all); anything else is done now."""
        task = self._tasks.get((arn, token))
        if task is None or task.job_id is None or task.job_id not in self._watch:
            self._close(ctx, arn, token)

    def _close(self, ctx: RunnerContext, arn: str, token: str) -> None:
        task = self._tasks.pop((arn, token), None)
        if task is not None:
            self._watch.forget(task.job_id)
            self._set_task(arn, token, wf.DONE)

    def _fire_timers(self, ctx: RunnerContext) -> None:
        now = now_ms()
        while self._timers and self._timers[0][0] <= now:
            fire_at_ms, arn, token = heapq.heappop(self._timers)
            if self._timer_at.get((arn, token)) != fire_at_ms:
                continue  # cancelled or re-armed
            del self._timer_at[(arn, token)]
            wf.delete_timers(ctx.conn, [(arn, token)])
            self.feed_event(ctx, arn, TimerFired(token))

    def _settle(self, ctx: RunnerContext, arn: str) -> None:
        self._report_finished(ctx, self._watch.ended_of(ctx.conn, arn))

    def _report_finished(self, ctx: RunnerContext, finished: list[EndedJob]) -> None:
        """Feed the interpreter each finished job's outcome: the job for SUCCEEDED, TaskFailed for FAILED."""
        for job in finished:
            key = self._watch.forget(job.job_id)
            if key is None:
                continue  # cancelled meanwhile
            arn, token = key
            self._close(ctx, arn, token)
            if job.succeeded:
                # Also to an execution that has ended: a task it aborted may have succeeded late,
                # and the interpreter keeps that result for a redrive.
                self._feed_late(ctx, arn, TaskSucceeded(token, job.output))
            else:
                self.feed_event(ctx, arn, TaskFailed(token, job.error, job.cause))

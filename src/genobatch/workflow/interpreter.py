"""The Amazon States Language interpreter: a pure core.

``apply(definition, execution, event, now)`` is a function of (state, event, clock): no I/O, no
wall clock, no randomness except what is derived from the execution's seed. It returns the new
``Execution`` (the whole state as data), the commands for the shell and the history events
(dicts in the shape of botocore's stepfunctions ``HistoryEvent``; ids continue from
``Execution.next_event_id``).

How it runs: an execution is a tree of *frames*, one per running sub-state-machine (the top
level ``""``, each Parallel branch, each Map iteration), each at one state with that state's raw
input. ``pending`` maps every outstanding token (a task, a timer) to its frame, so an event finds
its frame in O(1); a Map keeps per-iteration status in a list and a queue of iterations still to
start, so finishing one iteration starts the next without scanning the others, and a succeeded
iteration's frame is dropped (its output kept in the Map's results) to keep the state compact.
A failed or aborted frame keeps its state and input: redrive restarts exactly those frames.
A task aborted while its job was ending (a sibling failed, the execution stopped) may still
succeed: that late result is kept on the frame (``aborted`` maps the task's token to it), and a
redrive reuses it instead of running the task again.

Tokens (the shell's idempotency keys) are ``<frame>/<state>@<visit>#<attempt>#r<redrive count>``
(plus ``#wait``, ``#retry``, ``#timeout`` for timers), unique over the execution's whole life.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from genobatch.workflow import errors, history, states
from genobatch.workflow.definition import StateMachineDefinition
from genobatch.workflow.errors import StatesError
from genobatch.workflow.events import (
    CancelTask,
    CancelTimer,
    Command,
    Event,
    ExecutionStarted,
    RedriveRequested,
    RunTask,
    StartTimer,
    StopRequested,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    TimerFired,
)
from genobatch.workflow.execution import Execution, child_frame_id, new_frame, redrivable
from genobatch.workflow.fan_out import FanOut

__all__ = [
    "CancelTask",
    "CancelTimer",
    "Command",
    "Event",
    "Execution",
    "ExecutionStarted",
    "RedriveRequested",
    "RunTask",
    "StartTimer",
    "StopRequested",
    "TaskFailed",
    "TaskStarted",
    "TaskSucceeded",
    "TimerFired",
    "apply",
    "redrivable",
]


def apply(
    definition: StateMachineDefinition, execution: Execution | None, event: Event, now: float
) -> tuple[Execution, list[Command], list[dict]]:
    """Apply one event: the new state, the commands for the shell, the new history events.

    ``execution`` is None only for ExecutionStarted. It is updated in place and returned (a Map of
    1,000 iterations must not be copied per event); keep ``to_dict()`` if the old state is needed.
    Should apply raise (an interpreter bug), the execution may be partly updated: rebuild it from
    the persisted events (or the last snapshot plus the events after it) before using it again.
    ``now`` is part of the event: the shell persists it with the event and replays with it.
    Events that no longer apply (a late answer for a timed-out task, a timer of a finished
    execution, a redrive of a non-redrivable execution) change nothing and return no commands; the
    late success of a task an abort cancelled is only kept for a redrive (no history, no commands).
    """
    if isinstance(event, ExecutionStarted):
        if execution is not None:
            return execution, [], []
        execution = Execution(
            name=event.name,
            execution_arn=event.execution_arn,
            state_machine_arn=event.state_machine_arn,
            input=event.input,
            seed=event.seed,
            start_date=now,
        )
    elif execution is None:
        raise ValueError(f"{type(event).__name__} needs an execution; only ExecutionStarted creates one")
    run = _Run(definition, execution, now)
    run.handle(event)
    return execution, run.commands, run.history


class _Run(FanOut):
    """One apply(): the working state plus what it emits."""

    def __init__(self, definition: StateMachineDefinition, execution: Execution, now: float):
        self.definition = definition
        self.ex = execution
        self.now = now
        self.commands: list[Command] = []
        self.history: list[dict] = []
        self.entries: deque[str] = deque()  # frames that entered a state whose work has not run yet
        self.redrives: set[str] = set()  # entries that are a failed/aborted child's redrive instead
        self.execution_context: dict | None = None

    # -- events --------------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        self.dispatch(event)
        self.run_entries()

    def dispatch(self, event: Event) -> None:
        if isinstance(event, ExecutionStarted):
            self.start()
        elif isinstance(event, TaskSucceeded | TaskFailed | TaskStarted | TimerFired):
            self.token_event(event)
        elif isinstance(event, StopRequested):
            if self.ex.status == "RUNNING":
                self.finish_execution("ABORTED", event.error, event.cause)
        elif isinstance(event, RedriveRequested):
            if redrivable(self.ex, self.now) is None:
                self.redrive()
        else:
            raise ValueError(f"unknown workflow event {event!r}")

    def start(self) -> None:
        ex = self.ex
        self.emit("ExecutionStarted", None, {"input": history.as_json(ex.input), "inputDetails": {"truncated": False}})
        self.start_execution_timer()
        ex.frames[""] = new_frame("", "", None, None, {})
        ex.frames[""]["last_event"] = ex.next_event_id - 1
        self.enter("", self.definition.start_at(""), ex.input)

    def start_execution_timer(self) -> None:
        if self.definition.timeout_seconds:
            token = f"#timeout#r{self.ex.redrive_count}"
            self.ex.pending[token] = ["", "execution_timeout"]
            self.commands.append(StartTimer(token, self.now + self.definition.timeout_seconds))

    def token_event(self, event) -> None:
        entry = self.ex.pending.get(event.token)
        if entry is None and isinstance(event, TaskSucceeded | TaskFailed):
            self.aborted_task_ended(event)
        if entry is None or self.ex.status != "RUNNING":
            return  # late or replayed answer for something already settled: nothing to do
        frame_id, kind = entry
        if isinstance(event, TaskStarted):
            if kind == "task":
                self.task_started(frame_id, event)
            return
        if isinstance(event, TimerFired) != (kind != "task"):
            return
        self.forget(event.token)
        if kind == "execution_timeout":
            self.finish_execution("TIMED_OUT", errors.TIMEOUT, "The execution timed out")
        elif kind == "task":
            self.task_finished(frame_id, event)
        elif kind == "task_timeout":
            self.task_timed_out(frame_id)
        elif kind == "wait":
            self.wait_finished(frame_id)
        elif kind == "retry":
            self.execute(frame_id)

    # -- states --------------------------------------------------------------------------------

    def enter(self, frame_id: str, name: str, state_input: Any) -> None:
        """Move the frame to state ``name``; its work runs from ``run_entries`` (a queue, not a
        nested call, so that a long chain of states or a Map of Pass states cannot exhaust the
        stack, and a Map never re-enters its own start loop)."""
        frame = self.ex.frames[frame_id]
        frame.update(state=name, input=state_input, visit=frame["visit"] + 1, attempt=0, retries={}, children=None)
        frame["entered"] = self.now
        self.entries.append(frame_id)

    def run_entries(self) -> None:
        while self.entries:
            frame_id = self.entries.popleft()
            frame = self.ex.frames.get(frame_id)
            redrive = frame_id in self.redrives
            self.redrives.discard(frame_id)
            if frame is None or frame["status"] != "RUNNING" or self.ex.status != "RUNNING":
                continue  # aborted (a sibling failed, the execution stopped) before its turn came
            if redrive:
                self.redrive_frame(frame_id)
                continue
            state = self.state_of(frame)
            self.emit(
                f"{state['Type']}StateEntered",
                frame,
                {"name": frame["state"], "input": history.as_json(frame["input"])},
            )
            self.execute(frame_id)

    def execute(self, frame_id: str) -> None:
        """Do the current state's work (again, on a retry)."""
        frame = self.ex.frames[frame_id]
        state = self.state_of(frame)
        kind = state["Type"]
        scope = self.scope(frame, state)
        try:
            if kind == "Pass":
                self.complete(frame_id, states.pass_result(state, frame["input"], scope))
            elif kind == "Task":
                self.schedule_task(frame_id, frame, state, scope)
            elif kind == "Choice":
                target, output, assigned = states.choose(state, frame["input"], scope)
                self.leave(frame_id, state, output, assigned, target)
            elif kind == "Wait":
                token = f"{self.state_token(frame)}#wait"
                self.remember(token, frame_id, "wait")
                self.commands.append(StartTimer(token, states.wait_until(state, frame["input"], scope)))
            elif kind == "Succeed":
                output, _ = states.pass_through(state, frame["input"], scope)
                self.leave(frame_id, state, output, {}, None)
            elif kind == "Fail":
                error, cause = states.fail_error(state, frame["input"], scope)
                self.frame_failed(frame_id, error, cause)
            elif kind in ("Parallel", "Map"):
                self.start_children(frame_id, frame, state, scope)
        except StatesError as exc:
            self.state_failed(frame_id, exc.error, exc.cause)

    def schedule_task(self, frame_id: str, frame: dict, state: dict, scope: states.Scope) -> None:
        token = self.task_token(frame)
        scope.context["Task"] = {"Token": token}
        parameters = states.task_parameters(state, frame["input"], scope)
        timeout = states.seconds_setting(state, "TimeoutSeconds", frame["input"], scope)
        heartbeat = states.seconds_setting(state, "HeartbeatSeconds", frame["input"], scope)
        resource = state["Resource"]
        details = {**history.resource_fields(resource), "region": ""}
        details["parameters"] = history.as_json(parameters)
        if timeout:
            details["timeoutInSeconds"] = int(timeout)
        if heartbeat:
            details["heartbeatInSeconds"] = int(heartbeat)
        self.emit("TaskScheduled", frame, details)
        self.remember(token, frame_id, "task")
        self.commands.append(RunTask(token, resource, parameters, timeout, heartbeat))
        if timeout:
            self.remember(f"{token}#timeout", frame_id, "task_timeout")
            self.commands.append(StartTimer(f"{token}#timeout", self.now + timeout))

    def task_started(self, frame_id: str, event: TaskStarted) -> None:
        frame = self.ex.frames[frame_id]
        resource = self.state_of(frame)["Resource"]
        kind = history.resource_fields(resource)
        self.emit("TaskStarted", frame, dict(kind))
        self.emit("TaskSubmitted", frame, {**kind, "output": history.as_json(event.detail)})

    def task_finished(self, frame_id: str, event: TaskSucceeded | TaskFailed) -> None:
        frame = self.ex.frames[frame_id]
        resource = self.state_of(frame)["Resource"]
        self.cancel_timer(f"{self.task_token(frame)}#timeout")
        kind = history.resource_fields(resource)
        if isinstance(event, TaskFailed):
            self.emit("TaskFailed", frame, {**kind, "error": event.error, "cause": event.cause})
            self.state_failed(frame_id, event.error, event.cause)
            return
        self.emit("TaskSucceeded", frame, {**kind, "output": history.as_json(event.output)})
        self.complete(frame_id, event.output)

    def task_timed_out(self, frame_id: str) -> None:
        frame = self.ex.frames[frame_id]
        token = self.task_token(frame)
        self.forget(token)
        self.commands.append(CancelTask(token))
        resource = self.state_of(frame)["Resource"]
        cause = "The task timed out (TimeoutSeconds)"
        details = history.resource_fields(resource)
        self.emit("TaskTimedOut", frame, {**details, "error": errors.TIMEOUT, "cause": cause})
        self.state_failed(frame_id, errors.TIMEOUT, cause)

    def wait_finished(self, frame_id: str) -> None:
        frame = self.ex.frames[frame_id]
        state = self.state_of(frame)
        try:
            output, assigned = states.pass_through(state, frame["input"], self.scope(frame, state))
        except StatesError as exc:
            self.state_failed(frame_id, exc.error, exc.cause)
            return
        self.leave(frame_id, state, output, assigned, state.get("Next"))

    def complete(self, frame_id: str, result: Any) -> None:
        """The current state's work produced ``result``: output processing, then move on."""
        frame = self.ex.frames[frame_id]
        state = self.state_of(frame)
        try:
            output, assigned = states.finish(state, frame["input"], result, self.scope(frame, state))
        except StatesError as exc:
            self.state_failed(frame_id, exc.error, exc.cause)
            return
        self.leave(frame_id, state, output, assigned, state.get("Next"))

    def leave(self, frame_id: str, state: dict, output: Any, assigned: dict, target: str | None) -> None:
        frame = self.ex.frames[frame_id]
        self.drop_children(frame)
        details = {"name": frame["state"], "output": history.as_json(output)}
        if assigned:
            frame["vars"] = {**frame["vars"], **assigned}
            details["assignedVariables"] = {key: history.as_json(value) for key, value in assigned.items()}
        self.emit(f"{state['Type']}StateExited", frame, details)
        if target is None:
            self.frame_succeeded(frame_id, output)
        else:
            self.enter(frame_id, target, output)

    def state_failed(self, frame_id: str, error: str, cause: str) -> None:
        """The current state failed: Retry, else Catch, else the frame fails."""
        frame = self.ex.frames[frame_id]
        state = self.state_of(frame)
        in_task = state["Type"] == "Task"
        retriers = state.get("Retry", [])
        index = errors.find_match(retriers, error, in_task=in_task) if state["Type"] != "Fail" else None
        if index is not None:
            retrier = retriers[index]
            used = frame["retries"].get(str(index), 0)
            if used < errors.max_attempts(retrier):
                self.drop_children(frame)  # a retried Map/Parallel starts afresh
                frame["retries"][str(index)] = used + 1
                frame["attempt"] += 1
                token = f"{self.task_token(frame)}#retry"
                delay = errors.retry_delay(retrier, used, self.ex.seed, token)
                self.remember(token, frame_id, "retry")
                self.commands.append(StartTimer(token, self.now + delay))
                return
        catchers = state.get("Catch", []) if state["Type"] != "Fail" else []
        index = errors.find_match(catchers, error, in_task=in_task)
        if index is None:
            self.frame_failed(frame_id, error, cause)
            return
        catcher = catchers[index]
        self.drop_children(frame)
        try:
            output, assigned = states.caught(catcher, frame["input"], error, cause, self.scope(frame, state))
        except StatesError as exc:
            self.frame_failed(frame_id, exc.error, exc.cause)
            return
        self.leave(frame_id, state, output, assigned, catcher["Next"])

    # -- frames ----------------------------------------------------------------------------------

    def frame_succeeded(self, frame_id: str, output: Any) -> None:
        frame = self.ex.frames[frame_id]
        if frame["parent"] is None:
            self.ex.output = output
            self.finish_execution("SUCCEEDED", None, None)
            return
        del self.ex.frames[frame_id]  # its output lives on in the parent's results: keep the state small
        self.child_finished(frame, output, None, None)

    def frame_failed(self, frame_id: str, error: str, cause: str) -> None:
        frame = self.ex.frames[frame_id]
        frame.update(status="FAILED", error=error, cause=cause)
        if frame["parent"] is None:
            self.finish_execution("FAILED", error, cause)
            return
        self.child_finished(frame, None, error, cause)

    def finish_execution(self, status: str, error: str | None, cause: str | None) -> None:
        ex = self.ex
        root = ex.frames[""]
        if status != "SUCCEEDED":
            if root["status"] == "RUNNING":
                self.abort_frame("")
            ex.error, ex.cause = error, cause
        else:
            root["status"] = "SUCCEEDED"
        self.cancel_timer(f"#timeout#r{ex.redrive_count}")
        ex.status = status
        ex.stop_date = self.now
        if status == "SUCCEEDED":
            self.emit(
                "ExecutionSucceeded",
                None,
                {"output": history.as_json(ex.output), "outputDetails": {"truncated": False}},
            )
        else:
            kind = history.EXECUTION_ENDS[status]
            details = {key: value for key, value in (("error", error), ("cause", cause)) if value is not None}
            self.emit(kind, None, details)

    def abort_frame(self, frame_id: str) -> None:
        """Cancel everything ``frame_id`` (and its running children) is waiting for."""
        frame = self.ex.frames[frame_id]
        frame["status"] = "ABORTED"
        for token in list(frame["tokens"]):
            kind = self.ex.pending[token][1]
            self.forget(token)
            if kind == "task":
                self.ex.aborted[token] = frame_id  # its job may still succeed: see aborted_task_ended
                self.commands.append(CancelTask(token))
            else:
                self.commands.append(CancelTimer(token))
        children = frame.get("children")
        if children and children["failure"] is None:
            for index, status in enumerate(children["status"]):
                if status == "R":
                    child_id = child_frame_id(children["prefix"], index)
                    self.abort_frame(child_id)
                    children["status"][index] = "A"
                    children["running"] -= 1
                    if children["kind"] == "map":
                        self.emit("MapIterationAborted", frame, {"name": frame["state"], "index": index})
        state = self.state_of(frame) if frame["state"] else None
        if state and state["Type"] in ("Task", "Wait", "Map", "Parallel"):
            self.emit(f"{state['Type']}StateAborted", frame, None)

    # -- redrive ---------------------------------------------------------------------------------

    def aborted_task_ended(self, event: TaskSucceeded | TaskFailed) -> None:
        """An aborted task's job ended after all. If it succeeded and its frame still waits for a
        redrive at that task, keep the result: the redrive reuses it rather than run the job again
        (the job had finished its work; only the news of it came after the abort)."""
        frame_id = self.ex.aborted.pop(event.token, None)
        frame = self.ex.frames.get(frame_id) if frame_id is not None else None
        if isinstance(event, TaskFailed) or frame is None or frame["status"] != "ABORTED":
            return
        if self.task_token(frame) == event.token:
            frame["late_result"] = [event.output]

    def redrive(self) -> None:
        ex = self.ex
        ex.aborted.clear()  # a job that ends from now on is too late: its state runs again
        ex.redrive_count += 1
        ex.redrive_date = self.now
        self.execution_context = None
        ex.status = "RUNNING"
        ex.error = ex.cause = ex.output = None
        ex.stop_date = None
        self.emit("ExecutionRedriven", None, {"redriveCount": ex.redrive_count})
        self.start_execution_timer()
        self.redrive_frame("")

    def redrive_later(self, frame_id: str) -> None:
        """Queue a failed/aborted child's redrive as an entry: it runs from ``run_entries``, never
        inside its parent's start loop - a child can finish at once (from a kept late result, or
        with nothing left to run), and would re-enter that loop and complete the parent twice."""
        self.ex.frames[frame_id]["status"] = "RUNNING"
        self.redrives.add(frame_id)
        self.entries.append(frame_id)

    def redrive_frame(self, frame_id: str) -> None:
        """Resume a failed/aborted frame at the state where it stopped; inside a Map or Parallel
        only the children that did not succeed run again."""
        frame = self.ex.frames[frame_id]
        frame.update(status="RUNNING", error=None, cause=None)
        late = frame.pop("late_result", None)
        if late is not None:
            self.reuse_late_result(frame_id, late[0])
            return
        children = frame.get("children")
        if not children:
            self.enter(frame_id, frame["state"], frame["input"])
            return
        retry = [index for index, status in enumerate(children["status"]) if status != "S"]
        children.update(queue=retry, queue_at=0, running=0, failed=0, failure=None)
        children["done"] = len(children["status"]) - len(retry)
        self.emit_entered(frame)
        self.start_more(frame_id)

    def reuse_late_result(self, frame_id: str, output: Any) -> None:
        """Redrive an aborted task whose job succeeded late: enter it and succeed with that job's
        output, without running it again (the history shows the state entered and succeeding)."""
        frame = self.ex.frames[frame_id]
        frame["entered"] = self.now
        self.emit_entered(frame)
        kind = history.resource_fields(self.state_of(frame)["Resource"])
        self.emit("TaskSucceeded", frame, {**kind, "output": history.as_json(output)})
        self.complete(frame_id, output)

    # -- helpers ---------------------------------------------------------------------------------

    def state_of(self, frame: dict) -> dict:
        return self.definition.state(frame["machine"], frame["state"])

    def scope(self, frame: dict, state: dict) -> states.Scope:
        ex = self.ex
        if self.execution_context is None:  # the same for every state in this apply()
            self.execution_context = {
                "Id": ex.execution_arn,
                "Input": ex.input,
                "Name": ex.name,
                "StartTime": states.iso(ex.start_date),
                "RedriveCount": ex.redrive_count,
                "RedriveTime": states.iso(ex.redrive_date) if ex.redrive_date else None,
            }
        context = {
            "Execution": self.execution_context,
            "State": {
                "Name": frame["state"],
                "EnteredTime": states.iso(frame["entered"]),
                "RetryCount": frame["attempt"],
            },
            "StateMachine": {"Id": ex.state_machine_arn, "Name": ex.state_machine_arn.rsplit(":", 1)[-1]},
        }
        key = self.task_token(frame)
        draws = iter(range(1_000_000))

        def random(purpose: str) -> float:
            return errors.seeded_fraction(ex.seed, f"{key}:{purpose}:{next(draws)}")

        language = self.definition.state_query_language(frame["machine"], state)
        return states.Scope(context, frame["vars"], self.now, random, language)

    def state_token(self, frame: dict) -> str:
        return f"{frame['id']}/{frame['state']}@{frame['visit']}#r{self.ex.redrive_count}"

    def task_token(self, frame: dict) -> str:
        return f"{frame['id']}/{frame['state']}@{frame['visit']}#{frame['attempt']}#r{self.ex.redrive_count}"

    def remember(self, token: str, frame_id: str, kind: str) -> None:
        self.ex.pending[token] = [frame_id, kind]
        self.ex.frames[frame_id]["tokens"].append(token)

    def forget(self, token: str) -> None:
        frame_id, _ = self.ex.pending.pop(token)
        frame = self.ex.frames.get(frame_id)
        if frame is not None and token in frame["tokens"]:
            frame["tokens"].remove(token)

    def cancel_timer(self, token: str) -> None:
        if token in self.ex.pending:
            self.forget(token)
            self.commands.append(CancelTimer(token))

    def emit_entered(self, frame: dict) -> None:
        kind = self.state_of(frame)["Type"]
        self.emit(f"{kind}StateEntered", frame, {"name": frame["state"], "input": history.as_json(frame["input"])})

    def emit(self, kind: str, frame: dict | None, details: dict | None) -> None:
        event_id = self.ex.next_event_id
        self.ex.next_event_id += 1
        previous = frame["last_event"] if frame is not None else event_id - 1
        event: dict[str, Any] = {"timestamp": self.now, "type": kind, "id": event_id, "previousEventId": previous}
        if details is not None:
            event[history.details_key(kind)] = details
        if frame is not None:
            frame["last_event"] = event_id
        self.history.append(event)

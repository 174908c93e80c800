"""What the workflow runner keeps in memory between batches, and the small pieces it writes from it.

Split from :mod:`genobatch.workflow.runner` (which drives them): the inbox items, one task's and
one live execution's state, what a batch adds to an execution, and the execution row's columns.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

from genobatch.api.errors import ApiError, ServerException
from genobatch.workflow import store as wf
from genobatch.workflow.definition import StateMachineDefinition
from genobatch.workflow.interpreter import Execution


@dataclass
class Call:
    handler: Callable[[Any, dict], dict]  # (RunnerContext, request) -> response
    request: dict
    future: Future


@dataclass
class Submitted:
    """SubmitJob for a task returned: the response, or the ApiError that refused it."""

    arn: str
    token: str
    response: dict | None
    error: ApiError | None


@dataclass
class Task:
    resource: str
    state: str
    job_id: str | None = None
    in_flight: bool = False


@dataclass
class Live:
    """An execution the runner is driving: its definition and current interpreter state."""

    arn: str
    name: str
    state_machine_arn: str
    definition: StateMachineDefinition
    execution: Execution | None
    event_count: int
    snapshot_events: int


@dataclass
class Pending:
    """What one batch adds for one execution; written in the batch's transaction."""

    first_seq: int
    records: list[dict] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    commands: list = field(default_factory=list)


def submission(arn: str, token: str, future: Future) -> Submitted:
    error = future.exception()
    if error is None:
        return Submitted(arn, token, future.result(), None)
    if not isinstance(error, ApiError):
        error = ServerException(str(error))
    return Submitted(arn, token, None, error)


def columns(execution: Execution) -> dict:
    """The execution row's columns that mirror the interpreter's state."""
    return {
        "status": execution.status,
        "stopped_at": int(execution.stop_date * 1000) if execution.stop_date is not None else None,
        "output": json.dumps(execution.output) if execution.status == "SUCCEEDED" else None,
        "error": execution.error,
        "cause": execution.cause,
        "redrive_count": execution.redrive_count,
        "redrive_date": int(execution.redrive_date * 1000) if execution.redrive_date is not None else None,
        "history_count": execution.next_event_id - 1,
    }


def finish_deleting(conn: Any, state_machine_arn: str) -> None:
    """A DELETING state machine goes once its last running execution has ended."""
    machine = wf.get_state_machine(conn, state_machine_arn)
    if machine is not None and machine["status"] == "DELETING" and wf.running_count(conn, state_machine_arn) == 0:
        wf.delete_state_machine(conn, state_machine_arn)


UNREBUILDABLE = "genobatch could not rebuild the execution after a restart"


def end_unrecoverable(conn: Any, arn: str, cause: str, now: float) -> None:
    """End a RUNNING execution whose state could not be rebuilt: FAILED with States.Runtime, as AWS
    ends one on a runtime error, and an ExecutionFailed event saying why (never left RUNNING).
    Its timers go with it; its cause starts with ``UNREBUILDABLE``, which makes it not redrivable."""
    row = wf.get_execution(conn, arn)
    if row is None or row["status"] != "RUNNING":
        return  # ended meanwhile
    event_id = row["history_count"] + 1
    cause = cause[:32768]  # AWS's limit on a cause
    failed = {
        "timestamp": now,
        "type": "ExecutionFailed",
        "id": event_id,
        "previousEventId": event_id - 1,
        "executionFailedEventDetails": {"error": "States.Runtime", "cause": cause},
    }
    wf.append_history(conn, arn, [failed])
    values = {"status": "FAILED", "stopped_at": int(now * 1000), "error": "States.Runtime", "cause": cause}
    wf.update_execution(conn, arn, {**values, "history_count": event_id})
    wf.delete_timers_of(conn, arn)
    finish_deleting(conn, row["state_machine_arn"])


def settle(future: Future, value: object, ok: bool) -> None:
    with contextlib.suppress(InvalidStateError):
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

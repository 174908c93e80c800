"""What flows in and out of the workflow interpreter's pure core: events in, commands out.

The shell (the server's workflow runner) feeds *events* into ``interpreter.apply`` and carries out
the *commands* it returns. Both are plain JSON-serialisable dataclasses: the shell persists every
event it applies, and replaying the same events through ``apply`` reproduces the same state,
commands and history, so durability is "persist the events, replay them" (no hidden state).

Every command is keyed by a ``token`` the core makes deterministically from the task's position
in the execution (frame, state, visit, attempt, redrive count). The shell uses the token as the
idempotency key of whatever it starts (e.g. a tag on the Batch job it submits), so a replay
after a crash re-emits the same ``RunTask`` and the shell adopts the existing job instead of submitting a second one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ExecutionStarted:
    """StartExecution: the first event of every execution. ``seed`` drives every random choice
    (States.UUID, States.MathRandom, $random, retry jitter) so that replay is deterministic."""

    input: Any
    name: str
    execution_arn: str
    state_machine_arn: str
    seed: int


@dataclass(frozen=True)
class TaskSucceeded:
    """The resource behind ``token`` finished; ``output`` is its result (for ``batch:submitJob.sync``
    the DescribeJobs job, for ``batch:submitJob`` the SubmitJob response)."""

    token: str
    output: Any


@dataclass(frozen=True)
class TaskFailed:
    """The resource behind ``token`` failed with a States error name (e.g. ``States.TaskFailed``)
    and a cause (e.g. the Batch job's statusReason)."""

    token: str
    error: str
    cause: str


@dataclass(frozen=True)
class TaskStarted:
    """Optional: the shell started the resource (e.g. submitted the Batch job); ``detail`` (e.g.
    ``{"jobId": ...}``) goes to the history only and changes no state."""

    token: str
    detail: dict


@dataclass(frozen=True)
class TimerFired:
    """A ``StartTimer`` came due (Wait state, Retry interval, TimeoutSeconds)."""

    token: str


@dataclass(frozen=True)
class StopRequested:
    """StopExecution."""

    error: str | None = None
    cause: str | None = None


@dataclass(frozen=True)
class RedriveRequested:
    """RedriveExecution. The shell checks ``interpreter.redrivable`` first and answers
    ExecutionNotRedrivable with its reason; ``apply`` ignores a redrive of a non-redrivable one."""


@dataclass(frozen=True)
class RunTask:
    """Start the resource ``resource`` (a Task's ARN, e.g. ``arn:aws:states:::batch:submitJob.sync``)
    with the resolved ``parameters``; answer with TaskStarted (optional), then TaskSucceeded or
    TaskFailed for the same token. Must be idempotent per token (replay re-emits it).
    ``timeout_s`` and ``heartbeat_s`` are informative: the core enforces TimeoutSeconds itself with
    a timer; HeartbeatSeconds is not enforced (no heartbeats reach the core; AWS does not enforce it
    on ``batch:submitJob.sync`` either)."""

    token: str
    resource: str
    parameters: Any
    timeout_s: float | None = None
    heartbeat_s: float | None = None


@dataclass(frozen=True)
class CancelTask:
    """Stop the resource started for ``token`` (StopExecution, a failed Parallel sibling or Map
    iteration, a TimeoutSeconds). Best effort; no event is expected back, and a late
    TaskSucceeded/TaskFailed for the token is ignored."""

    token: str


@dataclass(frozen=True)
class StartTimer:
    """Answer with ``TimerFired(token)`` once the clock reaches ``fire_at`` (seconds since the epoch,
    on the same clock as apply's ``now``). Idempotent per token."""

    token: str
    fire_at: float


@dataclass(frozen=True)
class CancelTimer:
    """The timer for ``token`` is no longer wanted; a late TimerFired for it is ignored anyway."""

    token: str


Event = ExecutionStarted | TaskSucceeded | TaskFailed | TaskStarted | TimerFired | StopRequested | RedriveRequested
Command = RunTask | CancelTask | StartTimer | CancelTimer

_EVENT_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (ExecutionStarted, TaskSucceeded, TaskFailed, TaskStarted, TimerFired, StopRequested, RedriveRequested)
}
_COMMAND_TYPES: dict[str, type] = {cls.__name__: cls for cls in (RunTask, CancelTask, StartTimer, CancelTimer)}


def to_dict(message: Event | Command) -> dict:
    """An event or command as a JSON-ready dict: its fields plus ``"type": <class name>``.

    Shallow: the field values are JSON data already, shared with the message, not copied (a .sync
    task's output is a whole DescribeJobs job; ``dataclasses.asdict`` deep-copied it for every
    event the runner logs: 7 % of the engine thread in a 1,000-item Map).
    """
    names = _FIELD_NAMES.get(type(message))
    if names is None:
        names = _FIELD_NAMES[type(message)] = tuple(f.name for f in dataclasses.fields(message))
    return {"type": type(message).__name__, **{name: getattr(message, name) for name in names}}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def event_from_dict(data: dict) -> Event:
    """The event ``to_dict`` wrote. Raises ValueError naming an unknown type."""
    return _from_dict(data, _EVENT_TYPES, "event")


def command_from_dict(data: dict) -> Command:
    """The command ``to_dict`` wrote. Raises ValueError naming an unknown type."""
    return _from_dict(data, _COMMAND_TYPES, "command")


def _from_dict(data: dict, types: dict[str, type], what: str):
    fields = dict(data)
    name = fields.pop("type", None)
    cls = types.get(name)
    if cls is None:
        raise ValueError(f"unknown workflow {what} type {name!r}; expected one of {sorted(types)}")
    return cls(**fields)


# Each class also answers to_dict()/from_dict() itself, as the interface promises.
for _cls in (*_EVENT_TYPES.values(), *_COMMAND_TYPES.values()):
    _cls.to_dict = to_dict  # type: ignore[attr-defined]
    _cls.from_dict = classmethod(lambda cls, data: cls(**{k: v for k, v in data.items() if k != "type"}))  # type: ignore[attr-defined]

"""An execution's whole state as data, and AWS's rules for when it may be redriven."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

# AWS's redrive eligibility limits (API_RedriveExecution).
REDRIVE_WINDOW_S = 14 * 24 * 3600
MAX_OPEN_S = 365 * 24 * 3600
MAX_HISTORY_EVENTS = 25_000 - 1

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"})


@dataclass
class Execution:
    """One execution's whole state, as data (``to_dict``/``from_dict`` round-trip exactly).

    Public fields the shell reads: status (RUNNING | SUCCEEDED | FAILED | ABORTED | TIMED_OUT),
    input, output, error, cause, name, execution_arn, state_machine_arn, start_date, stop_date
    (seconds since the epoch, on apply's clock), redrive_count, redrive_date, next_event_id.
    ``frames`` and ``pending`` are the interpreter's own (one frame per running branch, Map
    iteration or the top level; ``pending`` maps each outstanding token to its frame; ``aborted``
    maps the token of each task cancelled by an abort to its frame, until a redrive).
    """

    name: str
    execution_arn: str
    state_machine_arn: str
    input: Any
    seed: int
    start_date: float
    status: str = "RUNNING"
    output: Any = None
    error: str | None = None
    cause: str | None = None
    stop_date: float | None = None
    redrive_count: int = 0
    redrive_date: float | None = None
    next_event_id: int = 1
    frames: dict[str, dict] = field(default_factory=dict)
    pending: dict[str, list] = field(default_factory=dict)
    aborted: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The state as JSON-ready data."""
        return copy.deepcopy(self.__dict__)

    def snapshot(self) -> dict:
        """The state as JSON-ready data *without* a copy: serialise it before the next ``apply``
        (the runner writes a snapshot at once; a deep copy of a 1,000-item Map each time was 3 %
        of the engine thread)."""
        return dict(self.__dict__)

    def size(self) -> int:
        """How big a snapshot is, in frames plus Map/Parallel child slots (what it costs to write)."""
        return len(self.frames) + sum(len(f["children"]["status"]) for f in self.frames.values() if f["children"])

    @classmethod
    def from_dict(cls, data: dict) -> Execution:
        """The state ``to_dict`` wrote."""
        return cls(**copy.deepcopy(data))

    @property
    def history_event_count(self) -> int:
        """How many history events this execution has produced so far."""
        return self.next_event_id - 1


def redrivable(execution: Execution, now: float) -> str | None:
    """None if RedriveExecution may run on ``execution`` now, else AWS's reason it may not."""
    if execution.status not in ("FAILED", "ABORTED", "TIMED_OUT"):
        return f"Execution is {execution.status}; only FAILED, ABORTED or TIMED_OUT executions can be redriven"
    if execution.stop_date is not None and now - execution.stop_date > REDRIVE_WINDOW_S:
        return "Execution can only be redriven within 14 days of its completion"
    if now - execution.start_date > MAX_OPEN_S:
        return "Execution can only be redriven while it has been open for less than one year"
    if execution.history_event_count >= MAX_HISTORY_EVENTS:
        return "Execution history event limit exceeded"
    return None


def new_frame(frame_id: str, machine: str, parent: str | None, index: int | None, variables: dict) -> dict:
    """A frame: one running sub-state-machine (the top level, a Parallel branch, a Map iteration)."""
    return {
        "id": frame_id,
        "machine": machine,
        "parent": parent,
        "index": index,
        "status": "RUNNING",
        "state": None,
        "input": None,
        "visit": -1,
        "attempt": 0,
        "retries": {},
        "entered": 0.0,
        "vars": dict(variables),
        "tokens": [],
        "children": None,
        "error": None,
        "cause": None,
        "last_event": 0,
    }


def child_frame_id(prefix: str, index: int) -> str:
    """The id of child ``index`` of a Map/Parallel state whose children share ``prefix``."""
    return f"{prefix}/{index}"

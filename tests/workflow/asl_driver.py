"""Drive the pure workflow core with events and a fake clock (tests only; no server, no I/O)."""

from __future__ import annotations

import json
from typing import Any

from genobatch.workflow import (
    CancelTask,
    CancelTimer,
    Execution,
    ExecutionStarted,
    RunTask,
    StartTimer,
    apply,
    parse_definition,
)


class Driver:
    """One execution: feeds events through ``apply``, keeps every command, history event and the
    events applied (with their clock), and tracks what is outstanding like a shell would."""

    def __init__(self, definition: dict | str, execution_input: Any = None, *, seed: int = 7, now: float = 1000.0):
        text = definition if isinstance(definition, str) else json.dumps(definition)
        self.definition = parse_definition(text)
        self.now = now
        self.execution: Execution | None = None
        self.applied: list[tuple[Any, float]] = []
        self.commands: list = []
        self.history: list[dict] = []
        self.tasks: dict[str, RunTask] = {}  # outstanding RunTask by token
        self.timers: dict[str, float] = {}  # outstanding timers: token -> fire_at
        self.cancelled: list[str] = []
        self.send(ExecutionStarted(execution_input, "run-1", "arn:aws:states:::execution:sm:run-1", "arn:sm:sm", seed))

    def send(self, event, *, at: float | None = None) -> list:
        """Apply ``event`` at ``at`` (default: the current fake time); return the new commands."""
        if at is not None:
            self.now = at
        self.execution, commands, history = apply(self.definition, self.execution, event, self.now)
        self.applied.append((event, self.now))
        self.commands.extend(commands)
        self.history.extend(history)
        for command in commands:
            if isinstance(command, RunTask):
                self.tasks[command.token] = command
            elif isinstance(command, StartTimer):
                self.timers[command.token] = command.fire_at
            elif isinstance(command, CancelTask):
                self.tasks.pop(command.token, None)
                self.cancelled.append(command.token)
            elif isinstance(command, CancelTimer):
                self.timers.pop(command.token, None)
        return commands

    def task(self, state: str | None = None) -> RunTask:
        """The one outstanding task (of ``state``, if given); fails if there is not exactly one."""
        found = [task for token, task in self.tasks.items() if state is None or f"/{state}@" in token]
        assert len(found) == 1, f"expected one outstanding task for {state}, got {sorted(self.tasks)}"
        return found[0]

    def tasks_of(self, state: str) -> list[RunTask]:
        return [task for token, task in self.tasks.items() if f"/{state}@" in token]

    def succeed(self, task: RunTask, output: Any) -> list:
        from genobatch.workflow import TaskSucceeded

        self.tasks.pop(task.token, None)
        return self.send(TaskSucceeded(task.token, output))

    def fail(self, task: RunTask, error: str = "States.TaskFailed", cause: str = "boom") -> list:
        from genobatch.workflow import TaskFailed

        self.tasks.pop(task.token, None)
        return self.send(TaskFailed(task.token, error, cause))

    def fire_next_timer(self) -> str:
        """Advance the clock to the earliest timer and fire it; returns its token."""
        from genobatch.workflow import TimerFired

        token = min(self.timers, key=lambda t: (self.timers[t], t))
        fire_at = self.timers.pop(token)
        self.send(TimerFired(token), at=max(self.now, fire_at))
        return token

    def types(self) -> list[str]:
        return [event["type"] for event in self.history]

    @property
    def status(self) -> str:
        return self.execution.status

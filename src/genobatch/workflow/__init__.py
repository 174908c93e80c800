"""Workflows: the Amazon States Language interpreter as a pure, deterministic core.

Why our own interpreter rather than moto's (ported from LocalStack; see
shared/reference/workflows.md): moto runs an execution as Python threads with in-memory state, so
an execution cannot survive a ``kill -9`` of the server nor resume mid-way; RedriveExecution
(which neither moto nor LocalStack implements) needs the execution's state as data; and moto's
four known defects (empty Batch request bodies, no JSONata, ``.sync`` retries that time out at
once, Map/Parallel errors re-wrapped so a Catch on ``States.TaskFailed`` never matches) sit exactly
on the seams genobatch needs. Here the state is data (``interpreter.Execution``), ``apply`` is a
function of (state, event, clock), so durability is "persist the events, replay them" and redrive
is a function over that state. The query languages come from well-kept libraries: ``jsonpath-ng``
for JSONPath and ``jsonata-python`` (pinned) for JSONata.

Modules: ``events`` (what goes in and out), ``definition`` (parse + validate), ``interpreter``
(the core: frames, Retry/Catch, Map/Parallel, stop, timeouts, redrive), ``execution`` (the state
as data, redrive eligibility), ``states`` (what each state type computes), ``paths`` (JSONPath
input/output processing), ``intrinsics`` (``States.*`` functions), ``jsonata_eval`` (JSONata with
AWS's extra functions), ``errors`` (error names, Retry/Catch matching, backoff and jitter),
``history`` (botocore's HistoryEvent shapes).

Not enforced: ``HeartbeatSeconds`` (no heartbeats reach the core; AWS does not enforce it on a
running ``batch:submitJob.sync`` task either); ``TimeoutSeconds`` is. Not supported: distributed
Map (ItemReader, ResultWriter, ItemBatcher), rejected at create time with a clear error.
"""

from genobatch.workflow.definition import InvalidDefinition, StateMachineDefinition, parse_definition
from genobatch.workflow.events import (
    CancelTask,
    CancelTimer,
    ExecutionStarted,
    RedriveRequested,
    RunTask,
    StartTimer,
    StopRequested,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
    TimerFired,
    command_from_dict,
    event_from_dict,
)
from genobatch.workflow.interpreter import Execution, apply, redrivable

__all__ = [
    "CancelTask",
    "CancelTimer",
    "Execution",
    "ExecutionStarted",
    "InvalidDefinition",
    "RedriveRequested",
    "RunTask",
    "StartTimer",
    "StateMachineDefinition",
    "StopRequested",
    "TaskFailed",
    "TaskStarted",
    "TaskSucceeded",
    "TimerFired",
    "apply",
    "command_from_dict",
    "event_from_dict",
    "parse_definition",
    "redrivable",
]

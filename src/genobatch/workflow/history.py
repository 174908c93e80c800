"""History events in the shape of botocore's stepfunctions ``HistoryEvent``: the details key of
each event type, and how a Task's resource ARN is shown in ``resourceType``/``resource``."""

from __future__ import annotations

import json
from typing import Any

EXECUTION_ENDS = {"FAILED": "ExecutionFailed", "ABORTED": "ExecutionAborted", "TIMED_OUT": "ExecutionTimedOut"}
_DETAILS_BY_SUFFIX = {"StateEntered": "stateEnteredEventDetails", "StateExited": "stateExitedEventDetails"}


def details_key(kind: str) -> str:
    """The HistoryEvent member holding the details of an event of type ``kind``."""
    for suffix, key in _DETAILS_BY_SUFFIX.items():
        if kind.endswith(suffix):
            return key
    return kind[0].lower() + kind[1:] + "EventDetails"


def as_json(value: Any) -> str:
    """A value as the compact JSON string the history carries (input, output, parameters)."""
    return json.dumps(value, separators=(",", ":"))


def resource_fields(resource: str) -> dict[str, str]:
    """``arn:aws:states:::batch:submitJob.sync`` -> ``{"resourceType": "batch", "resource":
    "submitJob.sync"}``, as AWS's history shows a service integration; other ARNs are kept whole."""
    parts = resource.split(":")
    if len(parts) > 6 and parts[2] == "states":
        return {"resourceType": parts[5], "resource": parts[6]}
    return {"resourceType": parts[2] if len(parts) > 2 else resource, "resource": resource}

"""Execution operations: Start, Stop, Redrive (run on the workflow runner's thread), Describe, List, history.

StartExecution with the name and input of a RUNNING execution answers that execution again (AWS's
idempotency); any other reuse of a name is ExecutionAlreadyExists. RedriveExecution follows
API_RedriveExecution: only FAILED, ABORTED or TIMED_OUT executions within AWS's limits
(:func:`genobatch.workflow.interpreter.redrivable`), with the same ARN and input; a repeated
request with the same ``clientToken`` (boto3 sends one) answers the first one's redriveDate.
"""

from __future__ import annotations

import json
import uuid

from genobatch.api.errors import ServerException
from genobatch.api.sfn_common import (
    ExecutionAlreadyExists,
    ExecutionDoesNotExist,
    ExecutionNotRedrivable,
    InvalidExecutionInput,
    ReadContext,
    StateMachineDeleting,
    ValidationException,
    check_name,
    decode_token,
    encode_token,
    execution_arn,
    page_size,
    parse_arn,
    seconds,
)
from genobatch.api.sfn_machines import require_machine
from genobatch.workflow import store as wf
from genobatch.workflow.events import ExecutionStarted, RedriveRequested, StopRequested
from genobatch.workflow.interpreter import Execution, redrivable
from genobatch.workflow.runner_state import UNREBUILDABLE

MAX_REDRIVE_TOKENS = 10  # AWS answers the last 10 client tokens of successful redrives idempotently
_DATA_FIELDS = ("input", "output", "inputDetails", "outputDetails")


def require_execution(conn: object, arn: str) -> dict:
    parse_arn(arn, "execution", 2)
    row = wf.get_execution(conn, arn)
    if row is None:
        raise ExecutionDoesNotExist(f"Execution Does Not Exist: '{arn}'")
    return row


def start_execution(ctx: object, request: dict) -> dict:
    machine = require_machine(ctx.conn, ctx.settings, request["stateMachineArn"])
    if machine["status"] == "DELETING":
        raise StateMachineDeleting(f"State Machine is being deleted: '{machine['arn']}'")
    name = request.get("name") or str(uuid.uuid4())
    check_name("execution", name)
    text = request.get("input", "{}")
    try:
        value = json.loads(text)
    except ValueError as error:
        raise InvalidExecutionInput(f"Invalid State Machine Execution Input: '{error}'") from None
    arn = execution_arn(ctx.settings, machine["name"], name)
    existing = wf.get_execution(ctx.conn, arn)
    if existing is not None:
        if existing["status"] == "RUNNING" and existing["input"] == text:
            return {"executionArn": arn, "startDate": seconds(existing["started_at"])}
        raise ExecutionAlreadyExists(f"Execution Already Exists: '{arn}'")
    wf.insert_execution(
        ctx.conn,
        {
            "arn": arn,
            "state_machine_arn": machine["arn"],
            "name": name,
            "status": "RUNNING",
            "started_at": ctx.now_ms,
            "definition": machine["document"]["definition"],
            "input": text,
            "redrive_count": 0,
            "event_count": 0,
            "history_count": 0,
            "snapshot_events": 0,
        },
    )
    ctx.feed(arn, ExecutionStarted(value, name, arn, machine["arn"], ctx.new_seed()))
    return {"executionArn": arn, "startDate": seconds(ctx.now_ms)}


def stop_execution(ctx: object, request: dict) -> dict:
    """Stops a running execution: its running Batch jobs are terminated (the runner's CancelTask)."""
    row = require_execution(ctx.conn, request["executionArn"])
    if row["status"] != "RUNNING":
        return {"stopDate": seconds(row["stopped_at"]) or seconds(ctx.now_ms)}
    ctx.feed(row["arn"], StopRequested(request.get("error"), request.get("cause")))
    return {"stopDate": seconds(ctx.now_ms)}


def redrive_execution(ctx: object, request: dict) -> dict:
    row = require_execution(ctx.conn, request["executionArn"])
    arn = row["arn"]
    tokens = dict(row.get("redrive_tokens") or {})  # durable: a retry after a restart is answered alike
    token = request.get("clientToken")
    if token and token in tokens:
        return {"redriveDate": seconds(tokens[token])}
    if wf.get_state_machine(ctx.conn, row["state_machine_arn"]) is None:
        raise ExecutionNotRedrivable(f"Execution '{arn}' cannot be redriven: its state machine was deleted")
    try:
        execution = ctx.live_execution(arn)
    except ServerException as error:  # its state cannot be rebuilt (it ended FAILED for that reason)
        raise ExecutionNotRedrivable(f"Execution '{arn}' cannot be redriven: {error.message}") from None
    reason = redrivable(execution, ctx.now) if execution is not None else "Execution has no state to redrive"
    if reason is not None:
        raise ExecutionNotRedrivable(f"Execution '{arn}' cannot be redriven: {reason}")
    ctx.settle_ended_tasks(arn)
    ctx.feed(arn, RedriveRequested())
    date_ms = int(ctx.now * 1000)  # as stored: DescribeExecution answers the same redriveDate
    if token:
        tokens[token] = date_ms
        while len(tokens) > MAX_REDRIVE_TOKENS:
            tokens.pop(next(iter(tokens)))
        wf.update_execution(ctx.conn, arn, {"redrive_tokens": tokens})
    return {"redriveDate": seconds(date_ms)}


def _redrive_status(row: dict, now: float) -> tuple[str, str | None]:
    if row["status"] in ("RUNNING", "SUCCEEDED"):
        return "NOT_REDRIVABLE", f"Execution is {row['status']} and cannot be redriven"
    if (row.get("cause") or "").startswith(UNREBUILDABLE):
        return "NOT_REDRIVABLE", "Execution's state could not be rebuilt after a restart"
    # redrivable() reads only the execution's dates, status and history size, all columns of the row.
    light = Execution(
        name=row["name"],
        execution_arn=row["arn"],
        state_machine_arn=row["state_machine_arn"],
        input=None,
        seed=0,
        start_date=row["started_at"] / 1000,
        status=row["status"],
        stop_date=seconds(row["stopped_at"]),
        redrive_count=row["redrive_count"],
        redrive_date=seconds(row["redrive_date"]),
        next_event_id=row["history_count"] + 1,
    )
    reason = redrivable(light, now)
    return ("REDRIVABLE", None) if reason is None else ("NOT_REDRIVABLE", reason)


def describe_execution(ctx: ReadContext, request: dict) -> dict:
    row = require_execution(ctx.conn, request["executionArn"])
    with_data = request.get("includedData", "ALL_DATA") == "ALL_DATA"
    result: dict = {
        "executionArn": row["arn"],
        "stateMachineArn": row["state_machine_arn"],
        "name": row["name"],
        "status": row["status"],
        "startDate": seconds(row["started_at"]),
        "redriveCount": row["redrive_count"],
    }
    if with_data:
        result.update(input=row["input"], inputDetails={"included": True})
    if row["stopped_at"] is not None and row["status"] != "RUNNING":
        result["stopDate"] = seconds(row["stopped_at"])
    if row["status"] == "SUCCEEDED" and with_data and row["output"] is not None:
        result.update(output=row["output"], outputDetails={"included": True})
    if row["error"] is not None and row["status"] != "RUNNING":
        result["error"] = row["error"]
    if row["cause"] is not None and row["status"] != "RUNNING":
        result["cause"] = row["cause"]
    if row["redrive_date"] is not None:
        result["redriveDate"] = seconds(row["redrive_date"])
    status, reason = _redrive_status(row, ctx.now)
    result["redriveStatus"] = status
    if reason:
        result["redriveStatusReason"] = reason
    return result


def list_executions(ctx: ReadContext, request: dict) -> dict:
    if request.get("mapRunArn"):
        raise ValidationException("mapRunArn: Distributed Map runs are not supported by genobatch")
    if not request.get("stateMachineArn"):
        raise ValidationException("stateMachineArn is required (genobatch has no map runs to list)")
    machine = require_machine(ctx.conn, ctx.settings, request["stateMachineArn"])
    limit = page_size(request)
    before = None
    if request.get("nextToken"):
        before = decode_token(request["nextToken"])
        if not (isinstance(before, list) and len(before) == 2):
            raise ValidationException("Invalid Token: nextToken was not issued by ListExecutions")
        before = (int(before[0]), str(before[1]))
    redrive = request.get("redriveFilter")
    rows = wf.list_executions(
        ctx.conn,
        machine["arn"],
        status=request.get("statusFilter"),
        redriven=None if redrive is None else redrive == "REDRIVEN",
        before=before,
        limit=limit + 1,
    )
    items = []
    for row in rows[:limit]:
        item = {
            "executionArn": row["arn"],
            "stateMachineArn": row["state_machine_arn"],
            "name": row["name"],
            "status": row["status"],
            "startDate": seconds(row["started_at"]),
            "redriveCount": row["redrive_count"],
        }
        if row["stopped_at"] is not None and row["status"] != "RUNNING":
            item["stopDate"] = seconds(row["stopped_at"])
        if row["redrive_date"] is not None:
            item["redriveDate"] = seconds(row["redrive_date"])
        items.append(item)
    response: dict = {"executions": items}
    if len(rows) > limit:
        last = rows[limit - 1]
        response["nextToken"] = encode_token([last["started_at"], last["arn"]])
    return response


def get_execution_history(ctx: ReadContext, request: dict) -> dict:
    row = require_execution(ctx.conn, request["executionArn"])
    limit = page_size(request)
    reverse = bool(request.get("reverseOrder"))
    after = None
    if request.get("nextToken"):
        after = decode_token(request["nextToken"])
        if not isinstance(after, int):
            raise ValidationException("Invalid Token: nextToken was not issued by GetExecutionHistory")
    events = wf.history_page(ctx.conn, row["arn"], after, limit + 1, reverse)
    page = events[:limit]
    if not request.get("includeExecutionData", True):
        page = [_without_data(event) for event in page]
    response: dict = {"events": page}
    if len(events) > limit:
        response["nextToken"] = encode_token(page[-1]["id"])
    return response


def _without_data(event: dict) -> dict:
    """A history event without its input and output (includeExecutionData false)."""
    result = {}
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in _DATA_FIELDS}
        result[key] = value
    return result

"""State machine operations: Create, Update, Delete, Describe, List, DescribeStateMachineForExecution.

A state machine is stored as its document (definition, role, type, tags, revision). genobatch runs
STANDARD workflows; versions and aliases (``publish``), logging, tracing and customer-managed keys
are refused by name rather than accepted and ignored. A definition is validated by the interpreter's
parser (errors as AWS's ``InvalidDefinition``) and its Task resources must be ones genobatch runs.
"""

from __future__ import annotations

import re
import uuid

from genobatch.api.sfn_common import (
    InvalidArn,
    InvalidDefinitionError,
    ReadContext,
    StateMachineAlreadyExists,
    StateMachineDeleting,
    StateMachineDoesNotExist,
    StateMachineTypeNotSupported,
    ValidationException,
    check_name,
    decode_token,
    encode_token,
    page_size,
    parse_arn,
    seconds,
    state_machine_arn,
)
from genobatch.workflow import batch_task
from genobatch.workflow import store as wf
from genobatch.workflow.definition import InvalidDefinition, parse_definition

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
LOGGING_OFF = {"level": "OFF", "includeExecutionData": False}
TRACING_OFF = {"enabled": False}


def _refuse_unsupported(request: dict) -> None:
    if request.get("publish") or "versionDescription" in request:
        raise ValidationException("publish/versionDescription: state machine versions are not supported by genobatch")
    logging = request.get("loggingConfiguration")
    if logging and (logging.get("level", "OFF") != "OFF" or logging.get("destinations")):
        raise ValidationException("loggingConfiguration: execution logging to CloudWatch is not supported by genobatch")
    if (request.get("tracingConfiguration") or {}).get("enabled"):
        raise ValidationException("tracingConfiguration: X-Ray tracing is not supported by genobatch")
    encryption = request.get("encryptionConfiguration")
    if encryption and encryption.get("type") != "AWS_OWNED_KEY":
        raise ValidationException("encryptionConfiguration: customer managed KMS keys are not supported by genobatch")


def _check_role(role: str) -> None:
    if not _ROLE_ARN.match(role):
        raise InvalidArn(f"Invalid Arn: '{role}' is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")


def validate_definition(text: str) -> None:
    """Raise InvalidDefinition (AWS's message form) for a definition genobatch cannot run."""
    try:
        parsed = parse_definition(text)
    except InvalidDefinition as error:
        raise InvalidDefinitionError(f"Invalid State Machine Definition: '{error}'") from None
    unsupported = batch_task.unsupported_resources(parsed.raw)
    if unsupported:
        raise InvalidDefinitionError(
            "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: resource not supported by genobatch "
            f"(it runs {' and '.join(batch_task.RESOURCES)}): {'; '.join(unsupported)}'"
        )


def require_machine(conn: object, settings: object, arn: str) -> dict:
    """The stored state machine named by ``arn``; InvalidArn or StateMachineDoesNotExist otherwise."""
    parse_arn(arn, "stateMachine", 1)
    machine = wf.get_state_machine(conn, arn)
    if machine is None:
        raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{arn}'")
    return machine


def create_state_machine(ctx: object, request: dict) -> dict:
    name = request["name"]
    check_name("state machine", name)
    if request.get("type", "STANDARD") != "STANDARD":
        raise StateMachineTypeNotSupported("genobatch runs STANDARD state machines only (EXPRESS is not supported)")
    _refuse_unsupported(request)
    _check_role(request["roleArn"])
    validate_definition(request["definition"])
    arn = state_machine_arn(ctx.settings, name)
    existing = wf.get_state_machine(ctx.conn, arn)
    if existing is not None:
        if existing["status"] == "DELETING":
            raise StateMachineDeleting(f"State Machine is being deleted: '{arn}'")
        document = existing["document"]
        # AWS: CreateStateMachine is idempotent for the same name, definition and role.
        if document["definition"] == request["definition"] and document["roleArn"] == request["roleArn"]:
            return {"stateMachineArn": arn, "creationDate": seconds(existing["created_at"])}
        raise StateMachineAlreadyExists(f"State Machine Already Exists: '{arn}'")
    document = {
        "definition": request["definition"],
        "roleArn": request["roleArn"],
        "type": "STANDARD",
        "tags": request.get("tags", []),
        "revisionId": str(uuid.uuid4()),
        "updateDate": ctx.now_ms,
    }
    wf.insert_state_machine(ctx.conn, arn, name, ctx.now_ms, document)
    return {"stateMachineArn": arn, "creationDate": seconds(ctx.now_ms)}


def update_state_machine(ctx: object, request: dict) -> dict:
    machine = require_machine(ctx.conn, ctx.settings, request["stateMachineArn"])
    if machine["status"] == "DELETING":
        raise StateMachineDeleting(f"State Machine is being deleted: '{machine['arn']}'")
    if "definition" not in request and "roleArn" not in request and "loggingConfiguration" not in request:
        raise ValidationException("UpdateStateMachine needs at least one of definition, roleArn, loggingConfiguration")
    _refuse_unsupported(request)
    document = dict(machine["document"])
    if "roleArn" in request:
        _check_role(request["roleArn"])
        document["roleArn"] = request["roleArn"]
    if "definition" in request:
        validate_definition(request["definition"])
        document["definition"] = request["definition"]
    document.update(revisionId=str(uuid.uuid4()), updateDate=ctx.now_ms)
    wf.update_state_machine(ctx.conn, machine["arn"], document=document)
    return {"updateDate": seconds(ctx.now_ms), "revisionId": document["revisionId"]}


def delete_state_machine(ctx: object, request: dict) -> dict:
    """Deleted at once, or marked DELETING until its running executions end (they run to completion)."""
    arn = request["stateMachineArn"]
    parse_arn(arn, "stateMachine", 1)
    machine = wf.get_state_machine(ctx.conn, arn)
    if machine is None:
        return {}
    if wf.running_count(ctx.conn, arn):
        wf.update_state_machine(ctx.conn, arn, status="DELETING")
    else:
        wf.delete_state_machine(ctx.conn, arn)
    return {}


def _description(machine: dict) -> dict:
    document = machine["document"]
    return {
        "stateMachineArn": machine["arn"],
        "name": machine["name"],
        "status": machine["status"],
        "definition": document["definition"],
        "roleArn": document["roleArn"],
        "type": document["type"],
        "creationDate": seconds(machine["created_at"]),
        "loggingConfiguration": LOGGING_OFF,
        "tracingConfiguration": TRACING_OFF,
        "revisionId": document["revisionId"],
    }


def describe_state_machine(ctx: ReadContext, request: dict) -> dict:
    return _description(require_machine(ctx.conn, ctx.settings, request["stateMachineArn"]))


def describe_state_machine_for_execution(ctx: ReadContext, request: dict) -> dict:
    """The definition an execution runs (the one it started with, even after UpdateStateMachine)."""
    from genobatch.api.sfn_executions import require_execution

    execution = require_execution(ctx.conn, request["executionArn"])
    machine = wf.get_state_machine(ctx.conn, execution["state_machine_arn"])
    document = machine["document"] if machine else {}
    return {
        "stateMachineArn": execution["state_machine_arn"],
        "name": execution["state_machine_arn"].rsplit(":", 1)[1],
        "definition": execution["definition"],
        "roleArn": document.get("roleArn", ""),
        "updateDate": seconds(execution["started_at"]),
        "loggingConfiguration": LOGGING_OFF,
        "tracingConfiguration": TRACING_OFF,
    }


def list_state_machines(ctx: ReadContext, request: dict) -> dict:
    limit = page_size(request)
    machines = wf.list_state_machines(ctx.conn)
    if request.get("nextToken"):
        after = decode_token(request["nextToken"])
        machines = [m for m in machines if m["name"] > str(after)]
    page = machines[:limit]
    items = [
        {"stateMachineArn": m["arn"], "name": m["name"], "type": "STANDARD", "creationDate": seconds(m["created_at"])}
        for m in page
    ]
    response: dict = {"stateMachines": items}
    if len(machines) > limit:
        response["nextToken"] = encode_token(page[-1]["name"])
    return response

"""AWS Step Functions on genobatch's endpoint: state machines and their executions, run on genobatch's queues.

The protocol is botocore's ``stepfunctions`` model: JSON 1.0, ``POST /`` with
``X-Amz-Target: AWSStepFunctions.<Operation>`` (CloudWatch Logs' ``Logs_20140328.*`` shares the route;
:func:`genobatch.api.app.create_app` dispatches on the target prefix), requests validated against
that model by :mod:`genobatch.api.model`, SigV4 scoped to the service ``states``. Errors are
``{"__type": code, "message": ...}`` with AWS's codes (``StateMachineDoesNotExist``,
``InvalidDefinition``, ``ExecutionNotRedrivable``, ...), HTTP 400 as AWS answers them.

Writes (create/update/delete a state machine, start/stop/redrive an execution) run on the workflow
runner's thread (:mod:`genobatch.workflow.runner`), the single writer of the workflow tables;
reads run on a store connection. The operations themselves are in
:mod:`genobatch.api.sfn_machines` and :mod:`genobatch.api.sfn_executions`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from genobatch.api import sfn_executions, sfn_machines
from genobatch.api.auth import AuthError, verify_request
from genobatch.api.errors import ApiError, ClientException, new_request_id
from genobatch.api.model import parse_request, service_model
from genobatch.api.sfn_common import (
    ARN_SERVICE,
    SERVICE,
    ReadContext,
    ServiceUnavailable,
    UnknownOperation,
    UnsupportedOperation,
    ValidationException,
)
from genobatch.engine import Engine, now_ms

log = logging.getLogger("genobatch.api.stepfunctions")

TARGET_PREFIX = service_model(SERVICE).metadata["targetPrefix"] + "."
CONTENT_TYPE = "application/x-amz-json-" + service_model(SERVICE).metadata["jsonVersion"]

#: Operation -> (handler, whether it writes and so runs on the workflow runner's thread).
OPERATIONS: dict[str, tuple[Callable, bool]] = {
    "CreateStateMachine": (sfn_machines.create_state_machine, True),
    "UpdateStateMachine": (sfn_machines.update_state_machine, True),
    "DeleteStateMachine": (sfn_machines.delete_state_machine, True),
    "DescribeStateMachine": (sfn_machines.describe_state_machine, False),
    "ListStateMachines": (sfn_machines.list_state_machines, False),
    "DescribeStateMachineForExecution": (sfn_machines.describe_state_machine_for_execution, False),
    "StartExecution": (sfn_executions.start_execution, True),
    "StopExecution": (sfn_executions.stop_execution, True),
    "RedriveExecution": (sfn_executions.redrive_execution, True),
    "DescribeExecution": (sfn_executions.describe_execution, False),
    "ListExecutions": (sfn_executions.list_executions, False),
    "GetExecutionHistory": (sfn_executions.get_execution_history, False),
}


def _response(status: int, body: dict, request_id: str, error_code: str | None = None) -> Response:
    headers = {"x-amzn-RequestId": request_id}
    if error_code:
        headers["x-amzn-ErrorType"] = error_code
    text = json.dumps(body, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return Response(text, status, headers, CONTENT_TYPE)


def _operation(request: Request) -> str:
    target = request.headers.get("x-amz-target", "")
    name = target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else None
    if name in OPERATIONS:
        return name
    if name in service_model(SERVICE).operation_names:
        raise UnsupportedOperation(
            f"{name} is not supported by genobatch; it serves {', '.join(sorted(OPERATIONS))} "
            "(STANDARD workflows whose Task states run AWS Batch jobs)"
        )
    raise UnknownOperation(f"X-Amz-Target {target!r} names no Step Functions operation")


def endpoint(
    engine: Engine, runner: object | None, secret_for: Callable[[str], str | None] | None
) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint for Step Functions requests; ``secret_for`` None disables authentication.

    ``runner`` is the server's :class:`~genobatch.workflow.runner.WorkflowRunner`; without one (an
    app made for a test of the Batch API alone) every operation answers ServiceUnavailable.
    """

    async def serve(request: Request) -> Response:
        request_id = new_request_id()
        try:
            body = await request.body()
            if secret_for is not None:
                verify_request(request, body, secret_for, service=ARN_SERVICE)
            operation = _operation(request)
            if runner is None:
                raise ServiceUnavailable("Step Functions is not running on this server")
            try:
                params = parse_request(operation, body, service=SERVICE)
            except ClientException as error:
                raise ValidationException(error.message) from None
            handler, write = OPERATIONS[operation]
            if write:
                result = await asyncio.wrap_future(runner.call(handler, params))  # type: ignore[attr-defined]
            else:
                result = await run_in_threadpool(_read, engine, handler, params)
        except AuthError as error:
            log.info("refused states request: %s %s", error.code, error.message)
            status = 400 if error.status == 403 else error.status  # JSON-protocol services answer 400
            return _response(status, {"__type": error.code, "message": error.message}, request_id, error.code)
        except ApiError as error:
            return _response(error.status, {"__type": error.code, "message": error.message}, request_id, error.code)
        except Exception:  # noqa: BLE001 - answered as ServiceUnavailable, logged with traceback
            log.exception("internal error in a states request")
            error = ServiceUnavailable("Internal server error")
            return _response(error.status, {"__type": error.code, "message": error.message}, request_id, error.code)
        return _response(200, result, request_id)

    return serve


def _read(engine: Engine, handler: Callable, params: dict) -> dict:
    with engine.database.connect() as conn:
        return handler(ReadContext(conn, engine.settings, now_ms()), params)

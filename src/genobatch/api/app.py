"""The HTTP surface: the AWS Batch wire API under ``/v1/`` and genobatch's native API under
``/genobatch/v1/``. A thin layer: authenticate, route, validate against botocore's model, then hand
writes to the engine thread and run reads on a store connection."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL, Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from genobatch.api import (
    compute_environments,
    job_definitions,
    job_queries,
    job_queues,
    jobs,
    logs,
    native,
    stepfunctions,
    tags,
)
from genobatch.api.auth import AuthError, verify_request, verify_sigv4
from genobatch.api.body_limit import BodyLimit
from genobatch.api.errors import (
    ApiError,
    ClientException,
    ServerException,
    UnknownOperationException,
    error_response,
    new_request_id,
)
from genobatch.api.model import match_route, parse_request
from genobatch.api.rate_limit import RateLimits
from genobatch.api.sfn_common import ValidationException
from genobatch.console.app import Console
from genobatch.context import Context
from genobatch.engine import Engine, now_ms

log = logging.getLogger("genobatch.api")
MAX_SUBMIT_BYTES = 30 * 1024
BATCH_PREFIX = "/v1/"
#: The methods the Batch model binds operations to, and HEAD (which Starlette's routes allow with
#: GET). Any other method names no operation and is answered so before authentication.
BATCH_METHODS = frozenset({"GET", "HEAD", "POST", "DELETE", "PUT"})

#: Operation name -> (handler, whether it changes state and so runs on the engine thread).
HANDLERS: dict[str, tuple[Callable[[Context, dict], dict], bool]] = {
    "CreateComputeEnvironment": (compute_environments.create_compute_environment, True),
    "UpdateComputeEnvironment": (compute_environments.update_compute_environment, True),
    "DeleteComputeEnvironment": (compute_environments.delete_compute_environment, True),
    "DescribeComputeEnvironments": (compute_environments.describe_compute_environments, False),
    "CreateJobQueue": (job_queues.create_job_queue, True),
    "UpdateJobQueue": (job_queues.update_job_queue, True),
    "DeleteJobQueue": (job_queues.delete_job_queue, True),
    "DescribeJobQueues": (job_queues.describe_job_queues, False),
    "GetJobQueueSnapshot": (job_queues.get_job_queue_snapshot, True),  # reads the scheduler's queue
    "RegisterJobDefinition": (job_definitions.register_job_definition, True),
    "DeregisterJobDefinition": (job_definitions.deregister_job_definition, True),
    "DescribeJobDefinitions": (job_definitions.describe_job_definitions, False),
    "SubmitJob": (jobs.submit_job, True),
    "CancelJob": (jobs.cancel_job, True),
    "TerminateJob": (jobs.terminate_job, True),
    "DescribeJobs": (job_queries.describe_jobs, False),
    "ListJobs": (job_queries.list_jobs, False),
    "TagResource": (tags.tag_resource, True),
    "UntagResource": (tags.untag_resource, True),
    "ListTagsForResource": (tags.list_tags_for_resource, False),
}


def _ascii_json(content: object) -> bytes:
    """``content`` as compact JSON with every non-ASCII character escaped (see _AsciiJSONResponse)."""
    return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


class _AsciiJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped (``\\u00e9``), which any JSON parser reads back
    as the same text. Unlike UTF-8 output it cannot fail to encode: a lone surrogate that an
    earlier version stored is answered as its escape instead of making every response that
    includes it a 500."""

    def render(self, content: object) -> bytes:
        return _ascii_json(content)


def _auth_response(error: AuthError, request_id: str) -> Response:
    # The same shape as every other error (code in the header and as the body's __type).
    return error_response(ApiError(error.message, status=error.status, code=error.code), request_id)


class Api:
    """Binds the handlers to one engine and one key store."""

    def __init__(self, engine: Engine, secret_for: Callable[[str], str | None] | None) -> None:
        self.engine = engine
        self.secret_for = secret_for
        self.rate_limits = RateLimits(engine.settings.api_rate_limits)

    def authenticate(self, request: Request, body: bytes) -> None:
        if self.secret_for is None:
            return
        verify_request(request, body, self.secret_for)

    async def run(self, handler: Callable[[Context, dict], dict], params: dict, write: bool) -> dict:
        if write:
            return await asyncio.wrap_future(self.engine.call(handler, params))
        return await run_in_threadpool(self.read, handler, params)

    def read(self, handler: Callable[[Context, dict], dict], params: dict) -> dict:
        with self.engine.database.connect() as conn:
            return handler(Context(conn, self.engine.settings, now_ms()), params)

    async def batch(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Every AWS Batch operation, as a plain ASGI endpoint (see :class:`BatchRoutes`)."""
        request_id = new_request_id()
        body = await _read_body(receive)
        if body is None:
            return  # the client went away before its request was whole: nobody to answer
        method = scope["method"]
        try:
            if self.secret_for is not None:
                raw_path, query_string = scope["raw_path"].decode("latin-1"), scope["query_string"].decode("latin-1")
                verify_sigv4(method, raw_path, query_string, Headers(scope=scope), body, self.secret_for)
            route = match_route(method, scope["raw_path"])
            if route is None:
                raise UnknownOperationException(f"No operation at {method} {URL(scope=scope).path}")
            operation, labels = route
            if operation not in HANDLERS:
                raise ClientException(f"{operation} is not supported by genobatch")
            self.rate_limits.check(operation)
            if operation == "SubmitJob" and len(body) > MAX_SUBMIT_BYTES:
                raise ClientException("SubmitJob request is larger than 30 KiB")
            query = parse_qs(URL(scope=scope).query) if scope["query_string"] else {}
            params = parse_request(operation, body, labels, query)
            handler, write = HANDLERS[operation]
            result = await self.run(handler, params, write)
        except AuthError as error:
            log.info("refused request: %s %s", error.code, error.message)
            await _auth_response(error, request_id)(scope, receive, send)
            return
        except ApiError as error:
            await error_response(error, request_id)(scope, receive, send)
            return
        except Exception:  # noqa: BLE001 - answered as ServerException, logged with traceback
            log.exception("internal error")
            await error_response(ApiError("Internal server error"), request_id)(scope, receive, send)
            return
        await _send_json(send, result, request_id)

    async def native(self, request: Request) -> Response:
        """genobatch's own endpoints (logs, attempt details), authenticated like the wire API."""
        request_id = new_request_id()
        try:
            self.authenticate(request, b"")
            result = await run_in_threadpool(native.dispatch, self.engine, request)
        except AuthError as error:
            return _auth_response(error, request_id)
        except ApiError as error:
            return error_response(error, request_id)
        except Exception:  # noqa: BLE001 - answered as ServerException, logged with traceback
            log.exception("internal error in a native request")
            return error_response(ServerException("Internal server error"), request_id)
        return _AsciiJSONResponse(result, headers={"x-amzn-RequestId": request_id})


class BatchRoutes:
    """ASGI middleware that serves the Batch API (``/v1/...``) itself, ahead of Starlette's router.

    Every SubmitJob paid for Starlette's exception middleware, a walk past the console's routes,
    and a ``Request`` and a ``Response`` object: about a fifth of the server's main thread per call.
    Here a Batch request goes straight to :meth:`Api.batch` once :class:`BodyLimit` (in front of
    this) has capped and buffered its body; everything else goes on to the router. The answers
    are those the router gave: a method no operation uses is 404 ``UnknownOperationException``
    before authentication, as Starlette's 405 turned into by :func:`_no_route`.
    """

    def __init__(self, app: ASGIApp, api: Api) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(BATCH_PREFIX):
            await self.app(scope, receive, send)
        elif scope["method"] not in BATCH_METHODS:
            path = URL(scope=scope).path
            await error_response(UnknownOperationException(f"No operation at {scope['method']} {path}"))(
                scope, receive, send
            )
        else:
            await self.api.batch(scope, receive, send)


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None if the client disconnected first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_json(send: Send, content: object, request_id: str) -> None:
    """A 200 with ``content`` as ASCII JSON: the bytes and headers ``_AsciiJSONResponse`` sends."""
    body = _ascii_json(content)
    headers = [
        (b"x-amzn-requestid", request_id.encode("latin-1")),
        (b"content-length", str(len(body)).encode("latin-1")),
        (b"content-type", b"application/json"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _no_route(request: Request, _error: Exception) -> Response:
    """Starlette's 404 (no route) and 405 (route, other method), in AWS's error shape: the request
    names no operation, which is what AWS answers such requests with."""
    return error_response(UnknownOperationException(f"No operation at {request.method} {request.url.path}"))


async def _internal_error(_request: Request, _error: Exception) -> Response:
    """Anything a route failed to answer itself (it has been logged) as a ServerException."""
    return error_response(ServerException("Internal server error"))


def _too_large(scope: Scope, message: str) -> ApiError:
    """The error for an oversized request, in the code of the service it was for: on ``POST /``,
    Step Functions (by its ``X-Amz-Target``) names invalid input ValidationException and CloudWatch
    Logs InvalidParameterException; Batch (its REST paths) names it ClientException."""
    if scope.get("path", "") != "/":
        return ClientException(message)
    target = dict(scope.get("headers", ())).get(b"x-amz-target", b"").decode("latin-1")
    if target.startswith(stepfunctions.TARGET_PREFIX):
        return ValidationException(message)
    return logs.InvalidParameterException(message)


async def health(_request: Request) -> Response:
    # The pid tells a launcher polling a port which process answers: until the new server has
    # bound it, another one may (a test harness's port picked "free a moment ago").
    return JSONResponse({"status": "ok", "pid": os.getpid()})


def _json_services(
    engine: Engine, secret_for: Callable[[str], str | None] | None, workflows: object | None
) -> Callable[[Request], Awaitable[Response]]:
    """``POST /`` serves the JSON-protocol services, told apart by the prefix of ``X-Amz-Target``:
    Step Functions (``AWSStepFunctions.``) and CloudWatch Logs (everything else, as before)."""
    serve_logs = logs.endpoint(engine, secret_for)
    serve_states = stepfunctions.endpoint(engine, workflows, secret_for)

    async def serve(request: Request) -> Response:
        if request.headers.get("x-amz-target", "").startswith(stepfunctions.TARGET_PREFIX):
            return await serve_states(request)
        return await serve_logs(request)

    return serve


def create_app(
    engine: Engine, secret_for: Callable[[str], str | None] | None, workflows: object | None = None
) -> Starlette:
    """The ASGI application. ``secret_for`` None disables authentication (``--no-auth``).

    ``workflows`` is the server's :class:`~genobatch.workflow.runner.WorkflowRunner`, which the
    Step Functions operations need; without it they answer ServiceUnavailable.
    """
    api = Api(engine, secret_for)
    app = Starlette(
        middleware=[Middleware(BodyLimit, too_large=_too_large), Middleware(BatchRoutes, api=api)],
        exception_handlers={HTTPException: _no_route, Exception: _internal_error},
        routes=[
            *Console(engine, secret_for).routes(),  # the web console: GET / and /console/...
            Route("/genobatch/v1/health", health, methods=["GET"]),
            Route("/genobatch/v1/{path:path}", api.native, methods=["GET"]),
            Route("/", _json_services(engine, secret_for, workflows), methods=["POST"]),  # Logs, Step Functions
        ],
    )
    # Starlette would answer "/v1" with a redirect to "/v1/"; AWS answers a path that names no
    # operation with an error, and SDKs do not follow redirects for API calls.
    app.router.redirect_slashes = False
    return app

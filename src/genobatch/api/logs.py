"""CloudWatch Logs on genobatch's endpoint, for job logs: GetLogEvents, FilterLogEvents, DescribeLogStreams.

Clients that follow a Batch job's log (Airflow's BatchOperator with ``awslogs_enabled``, Nextflow,
Metaflow) read it from CloudWatch Logs. They work unchanged when ``AWS_ENDPOINT_URL_LOGS`` (or
``endpoint_url=``) points at this server. The protocol is botocore's ``logs`` model: JSON 1.1,
``POST /`` with ``X-Amz-Target: Logs_20140328.<Operation>``, requests validated against that model by
:mod:`genobatch.api.model`, SigV4 scoped to the service ``logs`` (a ``batch``-scoped signature is
refused here, and a ``logs`` one on the Batch routes). Errors are ``{"__type": code, "message": ...}``,
the part botocore's JSON parser reads; authentication failures are HTTP 400, as CloudWatch Logs
answers them (JSON-protocol services do not use 403).

How streams map to attempts, how lines become events and what their timestamps mean is in
:mod:`genobatch.api.log_streams`. Tokens are this server's own: ``f/<offset>`` and ``b/<offset>``
(56 digits, AWS's shape) for GetLogEvents, base64 JSON positions for the other two.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from genobatch.api import log_streams
from genobatch.api.auth import AuthError, verify_request
from genobatch.api.errors import ApiError, ClientException, new_request_id
from genobatch.api.log_streams import Line, Stream
from genobatch.api.model import parse_request, service_model
from genobatch.engine import Engine

log = logging.getLogger("genobatch.api.logs")

SERVICE = "logs"
TARGET_PREFIX = service_model(SERVICE).metadata["targetPrefix"] + "."
CONTENT_TYPE = "application/x-amz-json-" + service_model(SERVICE).metadata["jsonVersion"]
MAX_RESPONSE_BYTES = 1 << 20  # GetLogEvents/FilterLogEvents answer at most 1 MB of events
MAX_EVENTS = 10_000
EVENT_OVERHEAD = 26  # bytes CloudWatch counts per event on top of its message
_SCAN_BATCH = 10_000
_POSITION = re.compile(r"^([fb])/(\d{56})$")


class InvalidParameterException(ApiError):
    status = 400
    code = "InvalidParameterException"


class ResourceNotFoundException(ApiError):
    status = 400
    code = "ResourceNotFoundException"


class InvalidOperationException(ApiError):
    status = 400
    code = "InvalidOperationException"


class UnknownOperationException(ApiError):
    status = 400
    code = "UnknownOperationException"


class ServiceUnavailableException(ApiError):
    status = 500
    code = "ServiceUnavailableException"


@dataclass(frozen=True, slots=True)
class _Env:
    engine: Engine
    conn: Connection

    def find(self, group: str, name: str) -> Stream | None:
        return log_streams.find(self.conn, self.engine.attempt_dir, group, name)

    def streams(self, group: str, prefix: str = "") -> list[Stream]:
        return log_streams.all_streams(self.conn, self.engine.attempt_dir, group, prefix)

    def group_exists(self, group: str) -> bool:
        return log_streams.group_exists(self.conn, self.engine.attempt_dir, group)

    def stream_arn(self, stream: Stream) -> str:
        settings = self.engine.settings
        return f"arn:aws:logs:{settings.region}:{settings.account_id}:log-group:{stream.group}:log-stream:{stream.name}"


# ------------------------------------------------------------------------------------- parameters


def _group(request: dict) -> str:
    """The log group named by ``logGroupName`` or ``logGroupIdentifier`` (a name or an ARN)."""
    name, identifier = request.get("logGroupName"), request.get("logGroupIdentifier")
    if name and identifier:
        raise InvalidParameterException("LogGroupName and LogGroupIdentifier are mutually exclusive parameters.")
    if identifier:
        if identifier.startswith("arn:"):
            parts = identifier.split(":", 6)
            if len(parts) != 7 or parts[2] != "logs" or not parts[5] == "log-group":
                raise InvalidParameterException(f"logGroupIdentifier: {identifier!r} is not a log group ARN")
            identifier = parts[6].removesuffix(":*")
        return identifier
    if not name:
        raise InvalidParameterException("Either logGroupName or logGroupIdentifier must be given.")
    return name


def _window(request: dict) -> Callable[[int], bool]:
    """Whether an event time is inside ``[startTime, endTime)``."""
    start, end = request.get("startTime"), request.get("endTime")
    if start is not None and end is not None and end < start:
        raise InvalidParameterException("endTime must not be before startTime.")
    return lambda t: (start is None or t >= start) and (end is None or t < end)


def _encode_token(value: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()


def _decode_token(token: str, length: int) -> list:
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error):
        value = None
    if not isinstance(value, list) or len(value) != length:
        raise InvalidParameterException("The specified nextToken is invalid.")
    return value


def _event_time(stream: Stream) -> int:
    return stream.event_time if stream.event_time is not None else stream.created_at


def _cost(line: Line) -> int:
    return len(line.text.encode()) + EVENT_OVERHEAD


# ------------------------------------------------------------------------------------- filter patterns


@dataclass(frozen=True, slots=True)
class FilterPattern:
    """A filter pattern for unstructured events, matched case-sensitively as substrings.

    ``ERROR Exception`` needs both terms, ``?ERROR ?WARN`` either, ``-DEBUG`` excludes a term and
    ``"exact phrase"`` is one term with spaces. JSON (``{ $.x = 1 }``), space-delimited
    (``[ip, user, ...]``) and regular-expression (``%...%``) patterns are refused, by name.
    """

    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> FilterPattern:
        text = text.strip()
        if text[:1] in ("{", "[") or "%" in text:
            kind = {"{": "JSON", "[": "space-delimited"}.get(text[:1], "regular-expression")
            raise InvalidParameterException(
                f"filterPattern: {kind} filter patterns are not supported by genobatch; use terms, "
                '"quoted phrases", ?optional terms and -excluded terms'
            )
        required: list[str] = []
        optional: list[str] = []
        excluded: list[str] = []
        for prefix, term in _terms(text):
            {"?": optional, "-": excluded, "": required}[prefix].append(term)
        return cls(tuple(required), tuple(optional), tuple(excluded))

    def matches(self, message: str) -> bool:
        return (
            all(term in message for term in self.required)
            and (not self.optional or any(term in message for term in self.optional))
            and not any(term in message for term in self.excluded)
        )


def _terms(text: str) -> Iterator[tuple[str, str]]:
    """``(prefix, term)`` pairs: prefix ``?``, ``-`` or ``""``; quoted terms may hold spaces and ``\\"``."""
    pos = 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        prefix = text[pos] if text[pos] in "?-" else ""
        pos += len(prefix)
        if text[pos : pos + 1] == '"':
            term, pos = _quoted(text, pos + 1)
        else:
            end = pos
            while end < len(text) and not text[end].isspace():
                end += 1
            term, pos = text[pos:end], end
        if not term:
            raise InvalidParameterException(f"filterPattern: {prefix or 'a'} term is empty in {text!r}")
        yield prefix, term


def _quoted(text: str, pos: int) -> tuple[str, int]:
    """The phrase starting after an opening quote at ``pos - 1``, and the position after its closing quote."""
    out: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text):
            out.append(text[pos + 1])
            pos += 2
        elif char == '"':
            return "".join(out), pos + 1
        else:
            out.append(char)
            pos += 1
    raise InvalidParameterException(f"filterPattern: unterminated quoted phrase in {text!r}")


# ------------------------------------------------------------------------------------- operations


def _existing_stream(env: _Env, group: str, name: str) -> Stream:
    stream = env.find(group, name)
    if stream is not None:
        return stream
    if not env.group_exists(group):
        raise ResourceNotFoundException("The specified log group does not exist.")
    raise ResourceNotFoundException("The specified log stream does not exist.")


def _position(token: str) -> tuple[str, int]:
    match = _POSITION.match(token)
    if match is None:
        raise InvalidParameterException("The specified nextToken is invalid.")
    return match.group(1), int(match.group(2))


def get_log_events(env: _Env, request: dict) -> dict:
    """One page of a stream, forward from the head or a forward token, backward from the tail or a
    backward token. At the end of the stream the forward token comes back unchanged (how followers
    such as Airflow's know to wait), at its head the backward token."""
    stream = _existing_stream(env, _group(request), request["logStreamName"])
    inside = _window(request)
    limit = request.get("limit", MAX_EVENTS)
    token = request.get("nextToken")
    if token:
        direction, offset = _position(token)
    elif request.get("startFromHead"):
        direction, offset = "f", 0
    else:
        direction, offset = "b", log_streams.complete_end(stream)
    if direction == "f":
        lines, forward = log_streams.read_forward(stream, offset, limit, MAX_RESPONSE_BYTES)
        backward = lines[0].start if lines else offset
    else:
        lines, backward = log_streams.read_backward(stream, offset, limit, MAX_RESPONSE_BYTES)
        forward = offset
    at = _event_time(stream)
    events = [{"timestamp": at, "message": line.text, "ingestionTime": at} for line in lines if inside(at)]
    return {"events": events, "nextForwardToken": f"f/{forward:056d}", "nextBackwardToken": f"b/{backward:056d}"}


def _event_id(stream: Stream, line: Line) -> str:
    # AWS's event ids are 56 digits; this one is unique per stream and offset, and stable.
    digest = int(hashlib.sha256(stream.name.encode()).hexdigest(), 16) % 10**23
    return f"{_event_time(stream):013d}{digest:023d}{line.start:020d}"


def _filter_streams(env: _Env, group: str, request: dict) -> list[Stream]:
    names, prefix = request.get("logStreamNames"), request.get("logStreamNamePrefix")
    if names and prefix:
        raise InvalidParameterException("logStreamNames and logStreamNamePrefix are mutually exclusive parameters.")
    if names:
        streams = [s for s in (env.find(group, name) for name in dict.fromkeys(names)) if s is not None]
        if not streams and not env.group_exists(group):
            raise ResourceNotFoundException("The specified log group does not exist.")
    else:
        streams = env.streams(group, prefix or "")
        if not streams and not env.group_exists(group):
            raise ResourceNotFoundException("The specified log group does not exist.")
    return sorted(streams, key=Stream.sort_key)


def filter_log_events(env: _Env, request: dict) -> dict:
    """Matching events of a group's streams, ordered by time then stream, paged by ``nextToken``."""
    group = _group(request)
    pattern = FilterPattern.parse(request.get("filterPattern", ""))
    inside = _window(request)
    limit = request.get("limit", MAX_EVENTS)
    streams = _filter_streams(env, group, request)
    resume: tuple[int, str, int] | None = None
    if request.get("nextToken"):
        at, name, offset = _decode_token(request["nextToken"], 3)
        if not (isinstance(at, int) and isinstance(name, str) and isinstance(offset, int) and offset >= 0):
            raise InvalidParameterException("The specified nextToken is invalid.")
        resume = (at, name, offset)
    events: list[dict] = []
    searched: list[dict] = []
    size = 0
    for stream in streams:
        offset = 0
        if resume is not None:
            if stream.sort_key() < resume[:2]:
                continue
            if stream.sort_key() == resume[:2]:
                offset = resume[2]
        if not inside(_event_time(stream)):
            continue
        for line in _lines_from(stream, offset):
            if not pattern.matches(line.text):
                continue
            if len(events) >= limit or (events and size + _cost(line) > MAX_RESPONSE_BYTES):
                searched.append({"logStreamName": stream.name, "searchedCompletely": False})
                token = _encode_token([stream.sort_key()[0], stream.name, line.start])
                return {"events": events, "searchedLogStreams": searched, "nextToken": token}
            at = _event_time(stream)
            events.append(
                {
                    "logStreamName": stream.name,
                    "timestamp": at,
                    "message": line.text,
                    "ingestionTime": at,
                    "eventId": _event_id(stream, line),
                }
            )
            size += _cost(line)
        searched.append({"logStreamName": stream.name, "searchedCompletely": True})
    return {"events": events, "searchedLogStreams": searched}


def _lines_from(stream: Stream, offset: int) -> Iterator[Line]:
    """Every complete event of a stream from ``offset``, read in batches."""
    while True:
        lines, after = log_streams.read_forward(stream, offset, _SCAN_BATCH, 1 << 30)
        yield from lines
        if after == offset:
            return
        offset = after


def describe_log_streams(env: _Env, request: dict) -> dict:
    """A group's streams by name or by last event time, ``limit`` (at most 50) per page."""
    group = _group(request)
    prefix = request.get("logStreamNamePrefix", "")
    by_time = request.get("orderBy", "LogStreamName") == "LastEventTime"
    if by_time and prefix:
        raise InvalidParameterException("Cannot order by LastEventTime with a logStreamNamePrefix.")
    streams = env.streams(group, prefix)
    if not streams and not env.group_exists(group):
        raise ResourceNotFoundException("The specified log group does not exist.")
    records = [_stream_record(env, stream) for stream in streams]

    def key(record: dict) -> list:
        return [record.get("lastEventTimestamp", 0) if by_time else 0, record["logStreamName"]]

    descending = bool(request.get("descending"))
    records.sort(key=key, reverse=descending)
    if request.get("nextToken"):
        after = _decode_token(request["nextToken"], 2)
        # Decoded JSON of other types would fail the comparisons below (a 500, not a 400).
        if not (isinstance(after[0], int) and not isinstance(after[0], bool) and isinstance(after[1], str)):
            raise InvalidParameterException("The specified nextToken is invalid.")
        records = [r for r in records if (key(r) < after if descending else key(r) > after)]
    limit = request.get("limit", 50)
    page = records[:limit]
    response: dict = {"logStreams": page}
    if len(records) > limit:
        response["nextToken"] = _encode_token(key(page[-1]))
    return response


def _stream_record(env: _Env, stream: Stream) -> dict:
    record = {
        "logStreamName": stream.name,
        "creationTime": stream.created_at,
        "arn": env.stream_arn(stream),
        "storedBytes": 0,  # AWS has reported 0 here since 2019
    }
    if stream.event_time is not None and log_streams.log_size(stream) > 0:
        record["firstEventTimestamp"] = stream.event_time
        record["lastEventTimestamp"] = stream.event_time
        record["lastIngestionTime"] = stream.event_time
    return record


OPERATIONS: dict[str, Callable[[_Env, dict], dict]] = {
    "GetLogEvents": get_log_events,
    "FilterLogEvents": filter_log_events,
    "DescribeLogStreams": describe_log_streams,
}


# ------------------------------------------------------------------------------------- HTTP


def _response(status: int, body: dict, request_id: str, error_code: str | None = None) -> Response:
    headers = {"x-amzn-RequestId": request_id}
    if error_code:
        headers["x-amzn-ErrorType"] = error_code
    return Response(json.dumps(body, separators=(",", ":")), status, headers, CONTENT_TYPE)


def _error(error: ApiError, request_id: str) -> Response:
    return _response(error.status, {"__type": error.code, "message": error.message}, request_id, error.code)


def _operation(request: Request) -> str:
    target = request.headers.get("x-amz-target", "")
    if not target.startswith(TARGET_PREFIX):
        raise UnknownOperationException(f"X-Amz-Target {target!r} names no CloudWatch Logs operation")
    name = target[len(TARGET_PREFIX) :]
    if name in OPERATIONS:
        return name
    if name in service_model(SERVICE).operation_names:
        raise InvalidOperationException(
            f"{name} is not supported by genobatch; it serves job logs through "
            f"{', '.join(OPERATIONS)} (log group {log_streams.DEFAULT_GROUP})"
        )
    raise UnknownOperationException(f"X-Amz-Target {target!r} names no CloudWatch Logs operation")


def endpoint(
    engine: Engine, secret_for: Callable[[str], str | None] | None
) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint for ``POST /``; ``secret_for`` None disables authentication."""

    async def serve(request: Request) -> Response:
        request_id = new_request_id()
        try:
            body = await request.body()  # capped by the app's BodyLimit middleware before it gets here
            if secret_for is not None:
                verify_request(request, body, secret_for, service=SERVICE)
            operation = _operation(request)
            try:
                params = parse_request(operation, body, service=SERVICE)
            except ClientException as error:
                raise InvalidParameterException(error.message) from None
            result = await run_in_threadpool(_run, engine, OPERATIONS[operation], params)
        except AuthError as error:
            log.info("refused logs request: %s %s", error.code, error.message)
            # CloudWatch Logs, a JSON-protocol service, answers authentication failures with 400.
            status = 400 if error.status == 403 else error.status
            return _response(status, {"__type": error.code, "message": error.message}, request_id, error.code)
        except ApiError as error:
            return _error(error, request_id)
        except Exception:  # noqa: BLE001 - answered as ServiceUnavailableException, logged with traceback
            log.exception("internal error in a logs request")
            return _error(ServiceUnavailableException("Internal server error"), request_id)
        return _response(200, result, request_id)

    return serve


def _run(engine: Engine, operation: Callable[[_Env, dict], dict], params: dict) -> dict:
    with engine.database.connect() as conn:
        return operation(_Env(engine, conn), params)

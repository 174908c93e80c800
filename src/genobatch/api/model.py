"""The AWS Batch service model as the schema of record: routing, request parsing, output checks.

Everything here is derived from botocore's ``batch`` service model, so a new botocore that adds an
operation or a member changes routing and validation without code changes here. Request parsing and
the shape checks take ``service=`` too, so CloudWatch Logs requests (``logs``, see
:mod:`genobatch.api.logs`) are validated by the same code against their own model.

* :data:`ROUTES` / :func:`match_route` map ``(method, path)`` to an operation name. Batch is
  rest-json: every operation is ``POST /v1/<lowercased name>`` except the three tag operations on
  ``/v1/tags/{resourceArn}`` (``GET`` list, ``POST`` tag, ``DELETE`` untag). The ARN arrives
  percent-encoded (``/`` as ``%2F``), so matching works on the *raw* path and decodes afterwards.
* :func:`parse_request` turns the HTTP pieces into the operation's input dict and rejects anything
  the model does not allow, with a :class:`~genobatch.api.errors.ClientException` naming every bad
  field, before a handler sees it.
* :func:`check_output` lists how a response deviates from the operation's output shape; the test
  suites use it (through ``tests/shapes.py``) to prove every response is one AWS could send.

What botocore's :class:`~botocore.validate.ParamValidator` covers, and what this module adds:

==========================  =========================  =========================================
constraint                  ParamValidator             added here
==========================  =========================  =========================================
required members            yes
unknown members             yes
types                       yes, but ``true``/``false``  bools are rejected for numbers
                            pass as int/long/double
``min`` (string/list len,   yes                        ``min`` on maps (``TagrisTagsMap``)
number value)
``max``                     no                         strings, lists, maps, numbers
``enum``                    no                         yes
``pattern``                 no                         yes (the model declares none today)
32/64-bit integer range     no                         yes, so an id or size never overflows the
                                                       store
==========================  =========================  =========================================

Two more request rules, both as AWS's service framework behaves: a JSON ``null`` for a structure
member means "absent" (so ``{"timeout": null}`` is accepted and dropped), and ``NaN``/``Infinity``
are not JSON and are rejected. And one of genobatch's own: no string anywhere in a body (member
names and map keys included) may hold a lone UTF-16 surrogate (``"\ud800"``) or U+0000, which
could be stored but never answered back (see :mod:`genobatch.api.text`).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.validate import ParamValidator

from genobatch.api.errors import ClientException
from genobatch.api.reviewed import refuse_unreviewed
from genobatch.api.shape_checker import ShapeChecker, clip
from genobatch.api.text import refuse_unstorable_text

__all__ = [
    "OPERATIONS",
    "OUTPUT_REQUIRED_EXEMPT",
    "ROUTES",
    "check_output",
    "input_problems",
    "match_route",
    "operation_model",
    "parse_request",
    "service_model",
]

# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


@functools.cache
def service_model(service: str = "batch") -> ServiceModel:
    """botocore's model of ``service`` (loaded once; loading parses a large JSON file).

    ``batch`` is the wire API; ``logs`` (CloudWatch Logs) serves job logs on the same endpoint.
    """
    return botocore.session.get_session().get_service_model(service)


@functools.cache
def operation_model(operation: str, service: str = "batch") -> OperationModel:
    """The model of one operation, e.g. ``"SubmitJob"``; raises ``OperationNotFoundError``."""
    return service_model(service).operation_model(operation)


#: Every operation name in the model, in the model's (alphabetical) order.
OPERATIONS: tuple[str, ...] = tuple(service_model().operation_names)

# ---------------------------------------------------------------------------------------------
# Routing
# ---------------------------------------------------------------------------------------------

# ``{name}`` binds one path segment, ``{name+}`` (greedy) the rest of the path, per the rest-json
# protocol. Batch only uses the plain form, but supporting both costs one alternative.
_LABEL = re.compile(r"\{([^}+]+)(\+?)\}")


def _template_regex(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """Compile a ``requestUri`` template to a regex plus the label names of its groups, in order.

    Groups are numbered rather than named because label names need not be valid regex identifiers.
    """
    parts: list[str] = []
    names: list[str] = []
    pos = 0
    for m in _LABEL.finditer(template):
        parts.append(re.escape(template[pos : m.start()]))
        parts.append("(.+)" if m.group(2) else "([^/]+)")
        names.append(m.group(1))
        pos = m.end()
    parts.append(re.escape(template[pos:]))
    return re.compile("".join(parts)), tuple(names)


def _build_routes() -> tuple[
    dict[tuple[str, str], str],
    dict[tuple[str, str], str],
    list[tuple[str, re.Pattern[str], tuple[str, ...], str]],
]:
    """Index every operation by ``(METHOD, requestUri template)``.

    Returns the full index, the label-free routes (matched by one dict lookup, which is all but
    three operations) and the templated ones (matched by regex).
    """
    routes: dict[tuple[str, str], str] = {}
    static: dict[tuple[str, str], str] = {}
    templated: list[tuple[str, re.Pattern[str], tuple[str, ...], str]] = []
    for name in OPERATIONS:
        http = operation_model(name).http
        method = http["method"].upper()
        # A requestUri may carry a fixed query part (``/x?versioning``, an S3 idiom): it does not
        # take part in path matching.
        template = http["requestUri"].split("?", 1)[0]
        key = (method, template)
        if key in routes:  # pragma: no cover - would be a broken service model
            raise RuntimeError(f"two operations bound to {method} {template}: {routes[key]}, {name}")
        routes[key] = name
        if "{" in template:
            regex, labels = _template_regex(template)
            templated.append((method, regex, labels, name))
        else:
            static[key] = name
    return routes, static, templated


_ROUTES, _STATIC_ROUTES, _TEMPLATED_ROUTES = _build_routes()

#: ``(HTTP method, requestUri template)`` → operation name, for every operation in the model,
#: e.g. ``("POST", "/v1/submitjob") → "SubmitJob"``, ``("DELETE", "/v1/tags/{resourceArn}") →
#: "UntagResource"``. Read-only.
ROUTES: Mapping[tuple[str, str], str] = MappingProxyType(_ROUTES)


def match_route(method: str, raw_path: str | bytes) -> tuple[str, dict[str, str]] | None:
    """Find the operation for a request: ``(operation name, decoded path labels)`` or ``None``.

    ``raw_path`` must be the path *as sent* (ASGI ``scope["raw_path"]``), not the decoded
    ``scope["path"]``: the tag operations carry an ARN with ``/`` encoded as ``%2F`` in one path
    segment, which decoding first would split in two. A query string, if still attached, is
    ignored. ``None`` means no operation is bound to this method and path (answer 404
    ``UnknownOperationException``).
    """
    path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else raw_path
    path = path.split("?", 1)[0]
    method = method.upper()
    name = _STATIC_ROUTES.get((method, path))
    if name is not None:
        return name, {}
    for route_method, regex, labels, name in _TEMPLATED_ROUTES:
        if route_method != method:
            continue
        m = regex.fullmatch(path)
        if m is not None:
            return name, {label: unquote(value) for label, value in zip(labels, m.groups(), strict=True)}
    return None


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


def _reject_constant(token: str) -> Any:
    """``json.loads`` hook: Python accepts ``NaN``/``Infinity``, JSON (and AWS) do not."""
    raise ValueError(f"{token} is not a valid JSON value")


def _decode_body(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object; an empty body is ``{}`` (GET/DELETE send none)."""
    if not body.strip():
        return {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ClientException(f"Request body is not valid UTF-8: {exc}") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError, and so is _reject_constant's
        raise ClientException(f"Request body is not valid JSON: {exc}") from None
    except RecursionError:
        # A body of thousands of nested brackets exhausts the decoder's stack: a bad request,
        # not a server fault.
        raise ClientException("Request body is nested too deeply") from None
    if not isinstance(value, dict):
        raise ClientException(f"Request body must be a JSON object, not {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages about the body as a whole."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _drop_nulls(value: Any, shape: Shape) -> Any:
    """Remove structure members whose value is JSON ``null``, recursively.

    A member sent as ``null`` is taken as not sent, which is how AWS's JSON protocols read it and
    what hand-written clients that serialize every optional field rely on. Nulls inside lists and
    maps are kept, so the validator reports them: there they cannot mean "absent".
    """
    type_name = shape.type_name
    if type_name == "structure" and isinstance(value, dict):
        if getattr(shape, "is_document_type", False):
            return value
        members = shape.members
        return {k: (_drop_nulls(v, members[k]) if k in members else v) for k, v in value.items() if v is not None}
    if type_name == "list" and isinstance(value, list):
        return [_drop_nulls(v, shape.member) for v in value]
    if type_name == "map" and isinstance(value, dict):
        return {k: _drop_nulls(v, shape.value) for k, v in value.items()}
    return value


def _from_text(text: str, shape: Shape) -> Any:
    """Convert a path label or query value to the member's type.

    A value that does not convert is returned as the string it is, so the validator then reports
    the member with its wrong type instead of this code inventing a message.
    """
    type_name = shape.type_name
    if type_name in ("integer", "long"):
        try:
            return int(text)
        except ValueError:
            return text
    if type_name in ("float", "double"):
        try:
            number = float(text)
        except ValueError:
            return text
        return number if math.isfinite(number) else text
    if type_name == "boolean":
        return {"true": True, "false": False}.get(text.lower(), text)
    return text


@functools.cache
def _http_members(input_shape: Shape) -> tuple[tuple[str, Shape, str, str], ...]:
    """The members bound to the path or the query: (name, shape, location, wire name). Most
    operations (SubmitJob) have none, and walking every member per request was a tenth of parsing."""
    return tuple(
        (name, member, member.serialization["location"], member.serialization.get("name", name))
        for name, member in input_shape.members.items()
        if member.serialization.get("location") in ("uri", "querystring")
    )


def _bind_http_members(
    params: dict[str, Any],
    input_shape: Shape,
    path_params: Mapping[str, str],
    query: Mapping[str, Sequence[str]],
) -> None:
    """Copy members bound to the URI path and the query string into ``params``.

    A bound member is read from where the protocol puts it and nowhere else, so a value for it in
    the body (which no SDK sends) is overwritten rather than trusted. Headers are not bound:
    the Batch model binds no member to a header.
    """
    claimed: set[str] = set()
    map_members: list[tuple[str, Shape]] = []
    for name, member, location, wire_name in _http_members(input_shape):
        if location == "uri":
            if wire_name in path_params:
                params[name] = _from_text(path_params[wire_name], member)
        elif location == "querystring":
            if member.type_name == "map":
                # A querystring map takes every query parameter no other member claims.
                map_members.append((name, member))
                continue
            claimed.add(wire_name)
            raw = query.get(wire_name, ())
            # A bare string is a Sequence[str] too; treat it as one value, not as its characters.
            values = [raw] if isinstance(raw, str) else list(raw)
            if not values:
                continue
            if member.type_name == "list":
                params[name] = [_from_text(v, member.member) for v in values]
            else:
                # A repeated scalar is ambiguous; the last value wins, as in most web frameworks.
                params[name] = _from_text(values[-1], member)
    for name, member in map_members:
        rest = {k: [v] if isinstance(v, str) else list(v) for k, v in query.items() if k not in claimed and v}
        if rest:
            value_shape = member.value
            if value_shape.type_name == "list":
                params[name] = {k: [_from_text(x, value_shape.member) for x in v] for k, v in rest.items()}
            else:
                params[name] = {k: _from_text(v[-1], value_shape) for k, v in rest.items()}


def parse_request(
    operation: str,
    body: bytes,
    path_params: Mapping[str, str] | None = None,
    query: Mapping[str, Sequence[str]] | None = None,
    *,
    service: str = "batch",
) -> dict[str, Any]:
    """Decode and validate one request into the operation's input dict.

    ``body`` is the raw request body, ``path_params`` the decoded labels from :func:`match_route`,
    ``query`` every query parameter with all its values (``parse_qs`` shape, so a repeated key
    such as ``tagKeys`` keeps each value). The result has the keys boto3 would have been called
    with, e.g. ``{"resourceArn": ..., "tagKeys": [...]}`` for UntagResource.

    Raises :class:`ClientException` for a body that is not a JSON object, and for any input the
    model rejects; the message names every offending field. ``service`` names the botocore model
    (a JSON-protocol service such as ``logs`` has no path or query members: pass neither).
    """
    input_shape = operation_model(operation, service).input_shape
    params = _decode_body(body)
    if input_shape is None:  # pragma: no cover - every Batch operation has an input shape
        if params:
            raise ClientException(f"{operation} takes no parameters, got: {', '.join(sorted(params))}")
        return {}
    params = _drop_nulls(params, input_shape)
    _bind_http_members(params, input_shape, path_params or {}, query or {})
    # After binding: a path label or query value can carry NUL (%00) as well as the body can. In
    # the (strict, UTF-8) body, only a \u escape can spell NUL or a lone surrogate.
    if path_params or query or b"\\u" in body:
        refuse_unstorable_text(params)
    problems = input_problems(operation, params, service)
    if problems:
        count = len(problems)
        raise ClientException(f"{count} validation error{'s' if count != 1 else ''} detected: {'; '.join(problems)}")
    # Valid for this botocore's model, but maybe newer than what genobatch honours: refuse, never ignore.
    refuse_unreviewed(operation, params, service)
    return params


def input_problems(operation: str, params: Mapping[str, Any], service: str = "batch") -> list[str]:
    """Every way ``params`` violates the operation's input shape, one message per problem.

    botocore's ParamValidator does the type/required/unknown/min checks (its messages, which name
    the field, are kept verbatim); the constraints it skips are checked here (see module doc).
    """
    input_shape = operation_model(operation, service).input_shape
    if input_shape is None:  # pragma: no cover - every Batch operation has an input shape
        return [f"Unknown parameter in input: {name!r}" for name in params]
    report = ParamValidator().validate(params, input_shape)
    problems = _report_messages(report)
    checker = ShapeChecker(full=False, root="input")
    checker.check(params, input_shape, "")
    return problems + checker.problems


def _report_messages(report: Any) -> list[str]:
    """Split a ParamValidator report into one message per error.

    ``generate_report()`` joins messages with newlines, which is ambiguous when an echoed value
    contains one, so the individual errors are formatted one by one. These are private to
    botocore (stable since 2015); should they ever go, the joined report is split instead.
    """
    if not report.has_errors():
        return []
    errors = getattr(report, "_errors", None)
    formatter = getattr(report, "_format_error", None)
    if isinstance(errors, list) and callable(formatter):
        messages = [str(formatter(error)) for error in errors]
    else:  # pragma: no cover - only with a future botocore
        messages = report.generate_report().splitlines()
    return [clip(m) for m in messages]


# ---------------------------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------------------------

#: Output members the model marks required but AWS leaves out, as ``(shape name, member)``.
#: ``startedAt`` is absent until a job has started (AWS behaviour, confirmed by moto#2202 and
#: amazonka#561); a response that omits it is what AWS sends, so it is not a problem.
OUTPUT_REQUIRED_EXEMPT: frozenset[tuple[str, str]] = frozenset(
    {
        ("JobDetail", "startedAt"),
        ("DescribeServiceJobResponse", "startedAt"),
    }
)


def check_output(operation: str, response: Mapping[str, Any], service: str = "batch") -> list[str]:
    """Every way ``response`` deviates from the operation's output shape (empty: it conforms).

    Accepts either the JSON body the server sends (decoded) or the dict boto3 returns (its added
    ``ResponseMetadata`` is ignored). Checks unknown members, types (Integer/Long must be int and
    not bool, strings str, ...), nulls (AWS omits absent members), enums, length/value bounds and
    required members, recursively through structures, lists and maps. Two deliberate
    allowances, both what AWS itself sends: required members listed in
    :data:`OUTPUT_REQUIRED_EXEMPT` may be absent, and lists/maps may be empty despite a model
    ``min`` (``{"tags": {}}``). Not called on the server's hot path.
    """
    output_shape = operation_model(operation, service).output_shape
    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    if output_shape is None:  # pragma: no cover - every Batch operation has an output shape
        return [f"{operation} returns no members, got: {', '.join(sorted(body))}"] if body else []
    checker = ShapeChecker(full=True, root="response", exempt_required=OUTPUT_REQUIRED_EXEMPT)
    checker.check(body, output_shape, "")
    return checker.problems

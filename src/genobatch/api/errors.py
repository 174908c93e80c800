"""Errors of the wire API, and how they are written back so AWS SDKs parse them.

The Batch service model declares exactly two error shapes, ``ClientException`` (HTTP 400) and
``ServerException`` (HTTP 500), each a structure with one ``message`` member. Anything a handler
raises as an :class:`ApiError` becomes such a response through :func:`error_response`.

Wire format (rest-json, as AWS Batch itself answers)::

    HTTP/1.1 400 Bad Request
    Content-Type: application/json
    x-amzn-RequestId: 5f7c...
    x-amzn-ErrorType: ClientException

    {"__type": "ClientException", "message": "..."}

botocore's ``RestJSONParser`` takes the code from ``x-amzn-ErrorType`` (falling back to the body's
``__type``, cutting anything after ``:`` or before ``#``) and the message from ``message``, so
``ClientError.response["Error"]`` reads ``{"Code": code, "Message": message}``. Both places carry
the same bare code so SDKs that look at only one of them (the JS and Go SDKs read the header first,
others the body) agree.

A request that names no operation (unknown path, or a known path with the wrong method, on any
route of the endpoint) gets HTTP 404 ``UnknownOperationException``: that is what AWS's service
framework answers when no protocol handler claims a request (the error is not in the Batch model
because no operation can return it; botocore surfaces it as a plain ``ClientError`` with that
code). A body over the endpoint's size limit gets HTTP 413 with the modelled ``ClientException``
code (see :mod:`genobatch.api.body_limit`), and refused authentication its own codes (403), all
in this same shape.
"""

from __future__ import annotations

import json
import uuid

from starlette.responses import Response

__all__ = [
    "ApiError",
    "ClientException",
    "ServerException",
    "UnknownOperationException",
    "error_response",
    "new_request_id",
]


class ApiError(Exception):
    """An error that is answered to the client as an AWS error response.

    ``status`` is the HTTP status, ``code`` the AWS error code (``Error.Code`` in botocore) and
    ``message`` the human-readable text (``Error.Message``). Subclasses fix ``status`` and
    ``code``; both can still be overridden per instance for the rare one-off error.
    """

    status: int = 500
    code: str = "ServerException"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Instance attributes shadow the class defaults only when asked to, so ``type(err).status``
        # stays the documented status of the class.
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r}, message={self.message!r})"


class ClientException(ApiError):
    """The request is wrong: invalid parameters, unknown resource, illegal state change (HTTP 400).

    AWS Batch uses this one code for every client-side failure, including "not found"; the
    message is what tells them apart, so make it specific.
    """

    status = 400
    code = "ClientException"


class ServerException(ApiError):
    """Something failed on our side (HTTP 500). botocore treats it as a retryable fault."""

    status = 500
    code = "ServerException"


class UnknownOperationException(ApiError):
    """No operation is bound to the request's method and path (HTTP 404)."""

    status = 404
    code = "UnknownOperationException"


def new_request_id() -> str:
    """A fresh request id in the UUID form AWS uses for ``x-amzn-RequestId``."""
    return str(uuid.uuid4())


def error_response(err: ApiError, request_id: str | None = None) -> Response:
    """Render ``err`` as the rest-json error response botocore parses back into ``err``.

    ``request_id`` should be the id the server already assigned the request (so logs and the
    response agree); a fresh one is made when none is given.
    """
    body = json.dumps({"__type": err.code, "message": err.message}, separators=(",", ":"))
    headers = {
        "x-amzn-ErrorType": err.code,
        "x-amzn-RequestId": request_id or new_request_id(),
    }
    return Response(content=body, status_code=err.status, headers=headers, media_type="application/json")

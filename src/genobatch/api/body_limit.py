"""A cap on request bodies, enforced before any route reads one (and so before authentication).

Every request body is read whole before its signature can be checked (SigV4 signs the payload's
hash), so without a cap anyone who can reach the port could make the server hold any amount of
memory with unsigned requests. :class:`BodyLimit` is an ASGI middleware that

* refuses a request whose ``Content-Length`` exceeds the limit before reading any of its body, and
* reads a body sent without ``Content-Length`` (chunked) at most up to the limit, refusing it as
  soon as it goes past,

answering ``413`` in the AWS JSON error shape with ``Connection: close``, so the server stops
reading instead of draining the rest. A body within the limit is handed on to the application
exactly as received, as one message.

The limit, :data:`MAX_REQUEST_BYTES`, is 1 MiB. The largest request bodies AWS documents for the
two services served here are CloudWatch Logs' PutLogEvents batch (1,048,576 bytes, the largest of
either service) and Batch's SubmitJob (30 KiB) and job definitions (24 KiB); 1 MiB admits every
valid request of either, with room for JSON escaping of non-ASCII text (up to 6 bytes a
character), and bounds what one request can make the server hold.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genobatch.api.errors import ApiError, error_response, new_request_id

__all__ = ["MAX_REQUEST_BYTES", "BodyLimit"]

MAX_REQUEST_BYTES = 1 << 20


class BodyLimit:
    """ASGI middleware: refuse HTTP request bodies larger than ``limit`` bytes.

    ``too_large(scope, message)`` makes the error to answer for the request ``scope`` describes
    (the services on the endpoint name their error codes differently; the path and the
    ``X-Amz-Target`` header tell which service a request is for).
    """

    def __init__(
        self, app: ASGIApp, too_large: Callable[[Scope, str], ApiError], limit: int = MAX_REQUEST_BYTES
    ) -> None:
        self.app = app
        self.too_large = too_large
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(scope, send, f"Request body of {declared} bytes is larger than {self.limit} bytes")
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away; let the app see it
                await self.app(scope, _replay(b"".join(chunks), receive, message), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, send, f"Request body is larger than {self.limit} bytes")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, send: Send, message: str) -> None:
        response = error_response(self.too_large(scope, message), new_request_id())
        response.status_code = 413
        # Without this the server would go on reading (and discarding) the rest of the body.
        response.headers["connection"] = "close"

        async def no_body() -> Message:
            return {"type": "http.disconnect"}

        await response(scope, no_body, send)


def _content_length(scope: Scope) -> int | None:
    """The declared body length, or None when absent (chunked). The HTTP server has already
    refused a malformed header, so what remains is digits."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isascii() and text.isdigit() else None
    return None


def _replay(body: bytes, receive: Receive, last: Message | None = None) -> Receive:
    """A ``receive`` that yields the buffered body (or ``last``) once, then defers to ``receive``."""
    first: Message = last if last is not None else {"type": "http.request", "body": body, "more_body": False}
    pending = [first]

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay

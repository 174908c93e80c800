"""Raw HTTP to the real server: any method, path, query and body bytes, SigV4-signed or not.

boto3 validates and serialises its input, so it cannot send the malformed requests the robustness
tests need. This signs arbitrary requests with botocore's own SigV4 signer (the one boto3 uses)
and sends them over one kept-alive ``http.client`` connection, reconnecting when the server
closes it. :func:`send_oversize` streams a body far past the server's cap over a plain socket.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
from dataclasses import dataclass

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from harness import Server


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)

    def aws_error_problems(self) -> list[str]:
        """How this reply deviates from AWS's JSON error shape (empty: it conforms).

        The shape :mod:`genobatch.api.errors` documents: an ``x-amzn-ErrorType`` header, a JSON
        content type, and a JSON object body with ``__type`` equal to that code and a string
        ``message``.
        """
        problems = []
        code = self.headers.get("x-amzn-errortype")
        if not code:
            problems.append("no x-amzn-ErrorType header")
        # rest-json (Batch) answers application/json; JSON 1.1 (CloudWatch Logs, POST /) its own.
        if not self.headers.get("content-type", "").startswith(("application/json", "application/x-amz-json-1.1")):
            problems.append(f"content-type {self.headers.get('content-type')!r}")
        try:
            body = json.loads(self.body)
        except ValueError:
            return [*problems, f"body is not JSON: {self.body[:200]!r}"]
        if not isinstance(body, dict):
            return [*problems, f"body is not an object: {body!r}"]
        if body.get("__type") != code:
            problems.append(f"__type {body.get('__type')!r} differs from header {code!r}")
        if not isinstance(body.get("message"), str):
            problems.append(f"no message: {body!r}")
        return problems


class RawClient:
    """Sends raw requests to ``server``; ``sign`` adds SigV4 scoped to ``service`` (``batch``, or
    ``logs`` for CloudWatch Logs on ``POST /``)."""

    def __init__(self, server: Server, *, sign: bool = True, service: str = "batch", timeout: float = 30) -> None:
        self.server = server
        self.timeout = timeout
        self.signer = (
            SigV4Auth(Credentials(server.access_key, server.secret_key), service, server.region) if sign else None
        )
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=self.timeout)
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def send(
        self, method: str, path: str, body: bytes = b"", *, query: str = "", headers: dict[str, str] | None = None
    ) -> Reply:
        """One request; ``path`` is sent as given (already percent-encoded), ``query`` likewise."""
        target = path + (f"?{query}" if query else "")
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if self.signer is not None:
            request = AWSRequest(method=method, url=self.server.endpoint + target, data=body, headers=all_headers)
            self.signer.add_auth(request)
            all_headers = dict(request.headers.items())
        for attempt in range(2):
            conn = self._connection()
            try:
                # The server may answer before the whole body is sent (a refused oversize body)
                # and close: its answer is still there to read.
                with contextlib.suppress(ConnectionError):
                    conn.request(method, target, body=body, headers=all_headers)
                response = conn.getresponse()
                data = response.read()
            except (ConnectionError, http.client.HTTPException):
                # The server closed a kept-alive connection before this request: retry once on
                # a fresh one; a second failure is the test's to see.
                self.close()
                if attempt:
                    raise
                continue
            if response.getheader("connection", "").lower() == "close":
                self.close()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
        raise AssertionError("unreachable")

    def call(self, operation_path: str, params: object) -> Reply:
        """POST a JSON body to a Batch operation path such as ``/v1/describejobs``."""
        return self.send("POST", operation_path, json.dumps(params).encode())


def send_oversize(server: Server, path: str, size: int, *, chunked: bool, headers: str = "") -> bytes:
    """Send headers announcing ``size`` bytes (or a chunked body) and keep writing until the server
    answers or hangs up; return what it answered. ``headers``: extra header lines, each ending CRLF."""
    block = b"x" * (1 << 20)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        framing = b"Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {size}\r\n".encode()
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}".encode()
            + framing
            + b"\r\n"
        )
        sent = 0
        try:
            while sent < size:
                sock.sendall((b"%x\r\n" % len(block) + block + b"\r\n") if chunked else block)
                sent += len(block)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-body: what it answered is still readable
        sock.settimeout(10)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and answer.split(b"\r\n\r\n", 1)[1].endswith(b"}"):
                    break
        except (ConnectionResetError, TimeoutError):
            pass  # what was answered before the reset or the silence is what counts
        return answer

"""Requests to genobatch's own endpoints (``/genobatch/v1/...``), which boto3 knows nothing of.

They are authenticated exactly like Batch API calls, a SigV4 signature for service ``batch``, so
one access key works for both. Sent with :mod:`urllib` to keep the CLI's dependencies small.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from genobatch.cli.errors import ApiError, CliError, ServerUnreachable

if TYPE_CHECKING:
    from genobatch.cli.client import SigningKey

TIMEOUT_S = 30.0


def path_segment(value: str) -> str:
    """Quote one path segment; ``:`` stays literal (array child ids hold one, and it is legal in a
    path) so the signed path and the sent path cannot disagree about its encoding."""
    return quote(value, safe=":")


def build_url(endpoint: str, path: str, params: dict[str, Any]) -> str:
    """``endpoint + path`` with the non-None ``params`` as the query string."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{endpoint}{path}" + (f"?{query}" if query else "")


def signed_headers(url: str, region: str, key: SigningKey, method: str = "GET") -> dict[str, str]:
    """The headers of a bodiless ``method`` request of ``url`` signed with SigV4, as botocore signs it."""
    request = AWSRequest(method=method, url=url, data=b"", headers={"Accept": "application/json"})
    credentials = Credentials(key.access_key_id, key.secret_access_key)
    SigV4Auth(credentials, "batch", region).add_auth(request)
    return dict(request.headers.items())


def error_from_response(exc: urllib.error.HTTPError) -> ApiError:
    """An ``ApiError`` from an error response, read the way botocore reads rest-json errors."""
    try:
        body = json.loads(exc.read() or b"{}")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = exc.headers.get("x-amzn-ErrorType") or body.get("__type") or body.get("code") or ""
    # As botocore does: drop a ":<namespace url>" suffix and a "<namespace>#" prefix.
    code = str(code).split(":")[0].split("#")[-1] or f"HTTP {exc.code}"
    message = body.get("message") or body.get("Message") or exc.reason or ""
    return ApiError(code, str(message))


def signed_get(endpoint: str, path: str, params: dict[str, Any], region: str, key: SigningKey) -> dict[str, Any]:
    """GET ``endpoint + path`` signed, and return the decoded JSON object it answers."""
    return signed_request("GET", endpoint, path, params, region, key)


def signed_request(
    method: str, endpoint: str, path: str, params: dict[str, Any], region: str, key: SigningKey
) -> dict[str, Any]:
    """Send a bodiless ``method`` request to ``endpoint + path``, signed, and return the decoded JSON
    object it answers; errors as the CLI reports them (unreachable server, the API's error)."""
    url = build_url(endpoint, path, params)
    data = None if method == "GET" else b""
    request = urllib.request.Request(url, data=data, headers=signed_headers(url, region, key, method), method=method)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        raise error_from_response(exc) from None
    except urllib.error.URLError as exc:
        # Refused, unresolvable or timed out connecting: in every case nothing is serving there.
        if isinstance(exc.reason, OSError):
            raise ServerUnreachable(endpoint) from None
        raise CliError(f"cannot reach {endpoint}: {exc.reason}") from None
    except (TimeoutError, ConnectionError) as exc:
        raise CliError(f"the server at {endpoint} did not answer: {exc}") from None
    try:
        decoded = json.loads(raw)
    except ValueError:
        raise CliError(f"the server at {endpoint} sent a response that is not JSON") from None
    if not isinstance(decoded, dict):
        raise CliError(f"the server at {endpoint} sent an unexpected response")
    return decoded

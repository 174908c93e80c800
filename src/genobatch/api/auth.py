"""Verification of AWS Signature Version 4 on incoming requests.

The server must accept exactly what boto3, the AWS CLI and the other SDKs send to AWS Batch, so the
canonical request is rebuilt here the way botocore builds it for a rest-json service:

* canonical URI: the path *as sent on the wire* (already percent-encoded by the client), with dot
  segments and empty segments removed, then percent-encoded once more (``%3A`` becomes ``%253A``).
  Every service but S3 signs this double-encoded form;
* canonical query string: ``name=value`` pairs sorted by name then value, ``X-Amz-Signature`` left out;
* canonical headers: the headers named in ``SignedHeaders``, lower-cased, values whitespace-trimmed,
  repeated headers joined with commas;
* payload hash: the ``x-amz-content-sha256`` header when present, else SHA-256 of the body.

Errors are raised as :class:`AuthError` carrying the code and message AWS uses, so that a client shows
the same ``An error occurred (InvalidSignatureException) ...`` line it would show against AWS. Batch is
a rest-json service, and AWS's rest-json front ends answer authentication failures with 403 (JSON 1.x
services such as DynamoDB use 400 for the same codes).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, unquote, unquote_to_bytes

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# Longest validity a presigned URL may ask for (7 days), as on AWS.
MAX_PRESIGN_EXPIRES_S = 7 * 24 * 3600

_TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_TIMESTAMP_RE = re.compile(r"^[0-9]{8}T[0-9]{6}Z$")  # ASCII digits only, as strptime reads them
_HEX_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)


class AuthError(Exception):
    """A request failed authentication.

    ``status`` is the HTTP status, ``code`` goes into ``x-amzn-ErrorType`` and ``message`` into the JSON
    body's ``message``. ``debug`` optionally holds the canonical request and string-to-sign the server
    computed: useful in a server log to diagnose a client's signing bug, never secret, but not sent to
    the client by default since AWS Batch does not send it either.
    """

    def __init__(self, status: int, code: str, message: str, debug: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.debug = debug


def _missing_token() -> AuthError:
    return AuthError(403, "MissingAuthenticationTokenException", "Missing Authentication Token")


def _incomplete(message: str) -> AuthError:
    return AuthError(403, "IncompleteSignatureException", message)


def _invalid(message: str, debug: str | None = None) -> AuthError:
    return AuthError(403, "InvalidSignatureException", message, debug)


def _unrecognized() -> AuthError:
    return AuthError(403, "UnrecognizedClientException", "The security token included in the request is invalid.")


# ------------------------------------------------------------------------------------- entry point


def verify_request(
    request: Any, body: bytes, secret_for: Callable[[str], str | None], *, service: str = "batch"
) -> str:
    """:func:`verify_sigv4` for an ASGI request (Starlette's ``Request``), path and query as received."""
    return verify_sigv4(
        request.method,
        request.scope["raw_path"].decode("latin-1"),
        request.scope["query_string"].decode("latin-1"),
        request.headers,
        body,
        secret_for,
        service=service,
    )


def verify_sigv4(
    method: str,
    raw_path: str,
    query_string: str,
    headers: Mapping[str, str],
    body: bytes,
    secret_for: Callable[[str], str | None],
    *,
    service: str = "batch",
    now: datetime | None = None,
    max_skew_s: int = 900,
) -> str:
    """Check the SigV4 signature of a request and return the access key id that signed it.

    ``raw_path`` and ``query_string`` are exactly as received (percent-encoded, no ``?``); ``headers``
    may use any case, and a multi-valued mapping (Starlette's ``Headers``) is honoured through its
    ``items()``. Both the ``Authorization`` header and presigned URLs (``X-Amz-Signature`` in the query)
    are accepted. The credential scope may name any region: the client chooses it and this server is
    the same everywhere. Raises :class:`AuthError` on any failure.
    """
    now = _utc(now or datetime.now(UTC))
    header_values = _group_headers(headers)
    params = _split_query(query_string)
    param_names = {unquote(name) for name, _ in params}
    presigned = "X-Amz-Signature" in param_names or "X-Amz-Algorithm" in param_names

    if "authorization" in header_values:
        if presigned:
            raise _incomplete(
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the "
                "Authorization header should be specified"
            )
        auth = _parse_authorization_header(header_values["authorization"][0])
        timestamp = _timestamp_from_headers(header_values)
        expires_s: int | None = None
    elif presigned:
        auth, timestamp, expires_s = _parse_presigned_query(params)
        # The signature is not part of what it signs.
        params = [(name, value) for name, value in params if unquote(name) != "X-Amz-Signature"]
    else:
        raise _missing_token()

    _check_scope(auth, timestamp, service)
    _check_time(timestamp, now, max_skew_s, expires_s)

    for name in auth.signed_headers:
        if name not in header_values:
            raise _incomplete(f"'{name}' is named as a SignedHeader, but it does not exist in the HTTP request.")
    if "host" not in auth.signed_headers:
        raise _incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")

    secret = secret_for(auth.access_key_id)
    if secret is None:
        raise _unrecognized()

    claimed = _claimed_payload_hash(header_values, params, presigned)
    key = signing_key(secret, auth.date, auth.region, auth.service)
    canonical_headers = _canonical_headers(auth.signed_headers, header_values)
    signed_headers = ";".join(auth.signed_headers)

    # Anything but 64 hex digits cannot match; "" keeps compare_digest from rejecting non-ASCII input.
    provided = auth.signature.lower() if _HEX_SHA256_RE.match(auth.signature) else ""
    mismatches: list[tuple[str, str]] = []
    for path, query, payload_hash in _candidates(raw_path, params, claimed, body, presigned):
        canonical_request = "\n".join([method.upper(), path, query, canonical_headers, signed_headers, payload_hash])
        to_sign = string_to_sign(timestamp, auth.scope, canonical_request)
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, provided):
            _check_payload(claimed, body)
            return auth.access_key_id
        mismatches.append((canonical_request, to_sign))

    # The first candidate is what botocore would have signed: the most useful one to show.
    debug = (
        f"The Canonical String for this request should have been\n'{mismatches[0][0]}'\n\n"
        f"The String-to-Sign should have been\n'{mismatches[0][1]}'\n"
    )
    raise _invalid(_SIGNATURE_MISMATCH, debug)


# ------------------------------------------------------------------------------------- primitives


@functools.lru_cache(maxsize=64)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """Derive the SigV4 signing key: HMAC chain over date, region, service and the terminator.

    Kept for the few keys in use (one per access key, day, region and service): the chain is
    four HMACs, a tenth of a request's signature check.
    """
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, TERMINATOR):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def string_to_sign(timestamp: str, scope: str, canonical_request: str) -> str:
    """The SigV4 string to sign for a canonical request."""
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return "\n".join([ALGORITHM, timestamp, scope, digest])


def remove_dot_segments(path: str) -> str:
    """Resolve ``.``/``..`` segments and drop empty ones (``//``), keeping leading/trailing slashes.

    AWS services require consecutive slashes to collapse as well, which plain RFC 3986 does not do.
    """
    if not path:
        return "/"
    out: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if out:
                out.pop()
        else:
            out.append(segment)
    lead = "/" if path.startswith("/") else ""
    trail = "/" if path.endswith("/") and out else ""
    return lead + "/".join(out) + trail


def _candidates(
    raw_path: str, params: list[tuple[str, str]], claimed: str | None, body: bytes, presigned: bool
) -> Iterable[tuple[str, str, str]]:
    """(canonical URI, canonical query, payload hash) in ``itertools.product`` order, made lazily:
    the first is what every correct client signs, and product() built every alternative first."""
    for path in _canonical_uris(raw_path):
        for query in _canonical_queries(params):
            for payload_hash in _payload_hashes(claimed, body, presigned):
                yield path, query, payload_hash


def _canonical_uris(raw_path: str) -> Iterable[str]:
    """Candidate canonical URIs for the received path, the botocore one first.

    botocore encodes the wire path once more, keeping only ``/`` and unreserved characters. That is
    what every correct client does when its wire path is strictly encoded. The second candidate
    decodes each segment and encodes it twice strictly, which also accepts a request whose path a
    proxy (or a lax client) sent with reserved characters left bare, e.g. ``arn:aws:...`` instead of
    ``arn%3Aaws%3A...``: both name the same resource, and the signature still has to match.
    """
    normalized = remove_dot_segments(raw_path or "/")
    first = quote(normalized, safe="/~")
    yield first
    strict = "/".join(quote(quote(unquote_to_bytes(seg), safe=""), safe="") for seg in normalized.split("/"))
    if strict != first:
        yield strict


def _split_query(query_string: str) -> list[tuple[str, str]]:
    """Raw (still percent-encoded) name/value pairs; a name without ``=`` has an empty value."""
    pairs = []
    for part in query_string.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((name, value))
    return pairs


def _canonical_queries(params: list[tuple[str, str]]) -> Iterable[str]:
    """Candidate canonical query strings, the specification's one first.

    * the specification's: each name and value decoded and re-encoded strictly, then sorted. It is
      what botocore signs for rest-json calls (it puts the query on the URL already strictly encoded
      and sorts it as is) and what the other SDKs sign;
    * botocore sorting the raw wire pairs, should a client have encoded differently from what it signed;
    * ``+`` read as a space: botocore signs ``params=`` requests with ``%20`` but puts them on the wire
      with ``urlencode``, which writes a space as ``+``.
    """
    seen: set[str] = set()
    for decode in (unquote_to_bytes, None, _unquote_plus_to_bytes):
        if decode is None:
            pairs = sorted(params)
        else:
            pairs = sorted((quote(decode(n), safe="-_.~"), quote(decode(v), safe="-_.~")) for n, v in params)
        candidate = "&".join(f"{n}={v}" for n, v in pairs)
        if candidate not in seen:
            seen.add(candidate)
            yield candidate


def _unquote_plus_to_bytes(text: str) -> bytes:
    return unquote_to_bytes(text.replace("+", " "))


def _group_headers(headers: Mapping[str, str]) -> dict[str, list[str]]:
    """Lower-cased header names to their values in order (several for a repeated header)."""
    grouped: dict[str, list[str]] = {}
    for name, value in headers.items():
        grouped.setdefault(name.lower(), []).append(value)
    return grouped


def _canonical_headers(signed: list[str], header_values: dict[str, list[str]]) -> str:
    # "Trimall": strip, and squeeze inner runs of whitespace to one space, as botocore does.
    lines = [f"{name}:{','.join(' '.join(v.split()) for v in header_values[name])}" for name in signed]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------- parsing


class _AuthParams:
    """What the client claims: who signed, for which scope, which headers, and the signature."""

    def __init__(self, credential: str, signed_headers: str, signature: str) -> None:
        parts = credential.split("/")
        if len(parts) != 5:
            raise _incomplete(
                "Credential must have exactly 5 slash-delimited elements, e.g. "
                f"keyid/date/region/service/term, got '{credential}'"
            )
        self.access_key_id, self.date, self.region, self.service, self.terminator = parts
        self.scope = "/".join(parts[1:])
        # Lower-cased like botocore does, so "Host" and "host" name the same header.
        self.signed_headers = [h.strip().lower() for h in signed_headers.split(";") if h.strip()]
        self.signature = signature


def _parse_authorization_header(value: str) -> _AuthParams:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        if "Credential=" not in value:
            # Not SigV4 at all (a bearer token, SigV2, garbage): say what a SigV4 header needs.
            raise _incomplete(
                "Authorization header requires 'Credential' parameter. Authorization header requires "
                "'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. "
                f"Authorization={value}"
            )
        raise _incomplete(f"Unsupported AWS 'algorithm': '{algorithm}'")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, val = item.partition("=")
        if not sep:
            raise _incomplete(
                f"'{item}' not a valid key=value pair (missing equal-sign) in Authorization header: '{value}'."
            )
        fields[key.strip()] = val.strip()
    missing = [name for name in ("Credential", "Signature", "SignedHeaders") if not fields.get(name)]
    if missing:
        raise _incomplete(
            " ".join(f"Authorization header requires '{name}' parameter." for name in missing)
            + f" Authorization={value}"
        )
    return _AuthParams(fields["Credential"], fields["SignedHeaders"], fields["Signature"])


def _timestamp_from_headers(header_values: dict[str, list[str]]) -> str:
    if "x-amz-date" in header_values:
        timestamp = header_values["x-amz-date"][0].strip()
        _parse_timestamp(timestamp)
        return timestamp
    if "date" in header_values:
        # botocore signs with an HTTP Date header instead when the caller set one; the string to sign
        # still carries the ISO 8601 basic form of that same instant.
        raw = header_values["date"][0]
        try:
            parsed = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError) as exc:
            raise _incomplete(f"Date header is not a valid HTTP date: '{raw}'") from exc
        return _utc(parsed).strftime(_TIMESTAMP_FORMAT)
    raise _incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")


def _parse_presigned_query(params: list[tuple[str, str]]) -> tuple[_AuthParams, str, int]:
    values = {unquote(name): unquote(value) for name, value in params}
    for name in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date"):
        if not values.get(name):
            raise _incomplete(
                f"AWS query-string parameters must include '{name}'. Re-examine the query-string parameters."
            )
    if values["X-Amz-Algorithm"] != ALGORITHM:
        raise _incomplete(f"Unsupported AWS 'algorithm': '{values['X-Amz-Algorithm']}'")
    timestamp = values["X-Amz-Date"]
    _parse_timestamp(timestamp)
    expires_raw = values.get("X-Amz-Expires", str(MAX_PRESIGN_EXPIRES_S))
    try:
        expires_s = int(expires_raw)
    except ValueError:
        raise _incomplete(f"X-Amz-Expires must be a whole number of seconds, got '{expires_raw}'") from None
    if not 0 < expires_s <= MAX_PRESIGN_EXPIRES_S:
        raise _incomplete(f"X-Amz-Expires must be between 1 and {MAX_PRESIGN_EXPIRES_S} seconds")
    auth = _AuthParams(values["X-Amz-Credential"], values["X-Amz-SignedHeaders"], values["X-Amz-Signature"])
    return auth, timestamp, expires_s


def _parse_timestamp(timestamp: str) -> datetime:
    # Exactly 8 digits, T, 6 digits, Z (strptime alone accepts single-digit fields that no signer
    # produces); the fields are then at fixed positions, and datetime() refuses the same
    # impossible dates and times strptime does, at a fraction of its cost (it was ~7 % of a request).
    if len(timestamp) == 16 and _TIMESTAMP_RE.match(timestamp):
        try:
            return datetime(
                int(timestamp[0:4]),
                int(timestamp[4:6]),
                int(timestamp[6:8]),
                int(timestamp[9:11]),
                int(timestamp[11:13]),
                int(timestamp[13:15]),
                tzinfo=UTC,
            )
        except ValueError:
            pass
    raise _incomplete(
        f"Date must be in ISO-8601 'basic format'. Got '{timestamp}'. See http://en.wikipedia.org/wiki/ISO_8601"
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# ------------------------------------------------------------------------------------- checks


def _check_scope(auth: _AuthParams, timestamp: str, service: str) -> None:
    if auth.terminator != TERMINATOR:
        raise _invalid(f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{auth.terminator}'.")
    if auth.service != service:
        raise _invalid(f"Credential should be scoped to correct service: '{service}'.")
    if not auth.region:
        raise _invalid("Credential should be scoped to a valid region, not ''.")
    if auth.date != timestamp[:8]:
        raise _invalid(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{auth.date}' != '{timestamp[:8]}', from '{timestamp}'."
        )


def _check_time(timestamp: str, now: datetime, max_skew_s: int, expires_s: int | None) -> None:
    """Reject stale or future-dated signatures, which bounds how long a captured request can be replayed."""
    signed_at = _parse_timestamp(timestamp)
    skew = timedelta(seconds=max_skew_s)
    window = f"{max_skew_s / 60:g} min."
    # A presigned URL is valid for X-Amz-Expires after signing; a header-signed request for the skew.
    oldest = now - (timedelta(seconds=expires_s) if expires_s is not None else skew)
    if signed_at < oldest:
        oldest_note = f"({_fmt(now)} - {expires_s} sec.)" if expires_s is not None else f"({_fmt(now)} - {window})"
        raise _invalid(f"Signature expired: {timestamp} is now earlier than {_fmt(oldest)} {oldest_note}")
    if signed_at > now + skew:
        raise _invalid(
            f"Signature not yet current: {timestamp} is still later than {_fmt(now + skew)} ({_fmt(now)} + {window})"
        )


def _fmt(moment: datetime) -> str:
    return moment.strftime(_TIMESTAMP_FORMAT)


def _claimed_payload_hash(
    header_values: dict[str, list[str]], params: list[tuple[str, str]], presigned: bool
) -> str | None:
    """The body hash the client put in ``x-amz-content-sha256`` (header, or query when presigned)."""
    claimed = header_values.get("x-amz-content-sha256", [None])[0]
    if claimed is None and presigned:
        claimed = {unquote(n): unquote(v) for n, v in params}.get("X-Amz-Content-Sha256")
    if claimed is None:
        return None
    claimed = claimed.strip()
    if claimed != UNSIGNED_PAYLOAD and not _HEX_SHA256_RE.match(claimed):
        # STREAMING-* (aws-chunked) payloads carry per-chunk signatures this server does not decode.
        raise _incomplete(
            f"x-amz-content-sha256 '{claimed}' is not supported: send the hex SHA-256 of the body or "
            f"{UNSIGNED_PAYLOAD}."
        )
    return claimed


def _payload_hashes(claimed: str | None, body: bytes, presigned: bool) -> Iterable[str]:
    """Candidate payload hashes for the canonical request.

    A claimed hash is signed as claimed (botocore does the same). Without one, the body's SHA-256;
    for a presigned URL also ``UNSIGNED-PAYLOAD``, which several SDKs' presigners use by default.
    """
    if claimed is not None:
        yield claimed
        return
    yield hashlib.sha256(body).hexdigest()
    if presigned:
        yield UNSIGNED_PAYLOAD


def _check_payload(claimed: str | None, body: bytes) -> None:
    """With a claimed body hash, the signature covers the claim, not the body: check the body matches.

    Done after the signature check so that an unauthenticated caller only ever learns about signatures.
    """
    if claimed and claimed != UNSIGNED_PAYLOAD and claimed.lower() != hashlib.sha256(body).hexdigest():
        raise AuthError(
            400,
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )

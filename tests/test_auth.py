"""SigV4 verification against botocore's own signer, and the key store.

Requests are signed by botocore (``SigV4Auth``, ``SigV4QueryAuth``) or by a real boto3 Batch client,
never by code from genobatch, so a passing test means genobatch accepts what AWS clients send.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import stat
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.utils
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials
from starlette.datastructures import Headers

from genobatch.api.auth import AuthError, remove_dot_segments, verify_sigv4
from genobatch.credentials import CREDENTIALS_FILE, EXTRA_KEYS_ENV, KeyPair, KeyStore

pytestmark = pytest.mark.no_store  # uses no store: the PostgreSQL pass would only repeat it

AKID = "GBIATESTTESTTESTTEST"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
ENDPOINT = "http://127.0.0.1:8741"
QUEUE_ARN = "arn:aws:batch:us-east-1:000000000000:job-queue/q1"
ENCODED_QUEUE_ARN = "arn%3Aaws%3Abatch%3Aus-east-1%3A000000000000%3Ajob-queue%2Fq1"


def secret_for(access_key_id: str) -> str | None:
    """The lookup a KeyStore provides, for one known key."""
    return SECRET if access_key_id == AKID else None


# ----------------------------------------------------------------------------------- helpers


class Wire:
    """A request as the server receives it: what verify_sigv4 is handed."""

    def __init__(self, method: str, url: str, headers: dict[str, str], body: bytes) -> None:
        parts = urlsplit(url)
        self.method = method
        self.raw_path = parts.path
        self.query = parts.query
        self.headers = dict(headers)
        # http.client adds Host itself (host[:port], port only when not the scheme's default).
        if not any(k.lower() == "host" for k in self.headers):
            default = {"http": 80, "https": 443}[parts.scheme]
            host = parts.hostname or ""
            self.headers["Host"] = host if parts.port in (None, default) else f"{host}:{parts.port}"
        self.body = body

    @classmethod
    def from_prepared(cls, prepared: AWSPreparedRequest) -> Wire:
        headers = {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in prepared.headers.items()}
        body = prepared.body or b""
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes):
            body = body.read()
        return cls(prepared.method, prepared.url, headers, body)

    def verify(self, lookup: Callable[[str], str | None] = secret_for, **kwargs: Any) -> str:
        return verify_sigv4(self.method, self.raw_path, self.query, self.headers, self.body, lookup, **kwargs)


def sign(
    method: str,
    path_and_query: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    params: dict[str, str] | None = None,
    access_key: str = AKID,
    secret: str = SECRET,
    region: str = "us-east-1",
    service: str = "batch",
) -> Wire:
    """Sign a request with botocore's SigV4Auth, as boto3 does, and return it as received on the wire."""
    request = AWSRequest(method=method, url=ENDPOINT + path_and_query, data=body, headers=headers or {})
    if params:
        request.params = params
    SigV4Auth(Credentials(access_key, secret), service, region).add_auth(request)
    return Wire.from_prepared(request.prepare())


def assert_auth_error(wire: Wire, code: str, status: int = 403, **kwargs: Any) -> AuthError:
    with pytest.raises(AuthError) as info:
        wire.verify(**kwargs)
    assert info.value.code == code, info.value.message
    assert info.value.status == status
    assert info.value.message
    return info.value


# ----------------------------------------------------------------------------------- accepted requests


def test_post_with_json_body() -> None:
    body = json.dumps({"jobName": "j", "jobQueue": "q1", "jobDefinition": "d:1"}).encode()
    wire = sign("POST", "/v1/submitjob", body, {"Content-Type": "application/json"})
    assert "content-type;host;x-amz-date" in wire.headers["Authorization"]
    assert wire.verify() == AKID


def test_tags_path_with_encoded_arn_is_double_encoded() -> None:
    wire = sign("POST", f"/v1/tags/{ENCODED_QUEUE_ARN}", b'{"tags": {"a": "b"}}')
    assert wire.raw_path == f"/v1/tags/{ENCODED_QUEUE_ARN}"
    assert wire.verify() == AKID
    # Debug output of a failure shows the double-encoded canonical URI botocore signed.
    wire.body = b'{"tags": {"a": "c"}}'
    err = assert_auth_error(wire, "InvalidSignatureException")
    assert "/v1/tags/arn%253Aaws%253Abatch" in (err.debug or "")


def test_path_with_reserved_characters_left_bare_by_a_proxy() -> None:
    wire = sign("GET", f"/v1/tags/{ENCODED_QUEUE_ARN}")
    # Same resource, but ":" and "/" arrive decoded; only the percent-encoded "/" must stay encoded.
    wire.raw_path = "/v1/tags/" + ENCODED_QUEUE_ARN.replace("%3A", ":")
    assert wire.verify() == AKID


def test_get_with_query_string() -> None:
    wire = sign("GET", "/v1/tags/x?tagKeys=a%20b&tagKeys=c%2Fd&empty=&alpha=1")
    assert wire.verify() == AKID


def test_get_with_params_encoded_by_urlencode() -> None:
    # request.params are signed as %20 but sent by urlencode as "+".
    wire = sign("GET", "/v1/x", params={"name": "a b+c", "z": "~/"})
    assert "+" in wire.query
    assert wire.verify() == AKID


def test_empty_body_and_any_region() -> None:
    wire = sign("POST", "/v1/describejobqueues", region="ap-southeast-2")
    assert wire.body == b""
    assert "/ap-southeast-2/batch/aws4_request" in wire.headers["Authorization"]
    assert wire.verify() == AKID


def test_headers_in_any_case_and_multi_valued_mapping() -> None:
    wire = sign("POST", "/v1/x", b"{}", {"Content-Type": "application/json", "X-Custom": "a  b"})
    lowered = {k.lower(): v for k, v in wire.headers.items()}
    assert verify_sigv4("POST", "/v1/x", "", lowered, b"{}", secret_for) == AKID
    upper = {k.upper(): v for k, v in wire.headers.items()}
    assert verify_sigv4("POST", "/v1/x", "", upper, b"{}", secret_for) == AKID
    raw = [(k.lower().encode(), v.encode()) for k, v in wire.headers.items()]
    assert verify_sigv4("POST", "/v1/x", "", Headers(raw=raw), b"{}", secret_for) == AKID


def test_x_amz_content_sha256_header_is_used_as_payload_hash() -> None:
    body = b'{"a": 1}'
    wire = sign("POST", "/v1/x", body, {"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
    assert wire.verify() == AKID
    unsigned = sign("POST", "/v1/x", body, {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert unsigned.verify() == AKID


def test_date_header_instead_of_x_amz_date() -> None:
    wire = sign("GET", "/v1/x", headers={"Date": "Thu, 01 Jan 1970 00:00:00 GMT"})
    assert "X-Amz-Date" not in wire.headers
    assert wire.verify() == AKID


def test_presigned_url() -> None:
    request = AWSRequest(method="GET", url=f"{ENDPOINT}/v1/tags/{ENCODED_QUEUE_ARN}?a=1", data=b"")
    SigV4QueryAuth(Credentials(AKID, SECRET), "batch", "us-west-2", expires=60).add_auth(request)
    wire = Wire.from_prepared(request.prepare())
    assert "X-Amz-Signature=" in wire.query
    assert "Authorization" not in wire.headers
    assert wire.verify() == AKID
    later = datetime.now(UTC) + timedelta(minutes=5)
    err = assert_auth_error(wire, "InvalidSignatureException", now=later)
    assert err.message.startswith("Signature expired")


def test_dot_segment_normalization_matches_botocore() -> None:
    for path in ["/", "", "/a/./b/../c", "//a//b/", "/a/..", "/../a", "/a/b/.", "/v1/x/", "a/b"]:
        assert remove_dot_segments(path) == botocore.utils.normalize_url_path(path), path


# ----------------------------------------------------------------------------------- boto3 itself


def _fake_response(request: AWSPreparedRequest) -> AWSResponse:
    class Raw:
        def stream(self, **_: object) -> Iterator[bytes]:
            yield b"{}"

    return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, Raw())


def _client(region: str = "us-east-1") -> Any:
    return boto3.client(
        "batch",
        endpoint_url=ENDPOINT,
        region_name=region,
        aws_access_key_id=AKID,
        aws_secret_access_key=SECRET,
        config=Config(retries={"max_attempts": 0}),
    )


def test_boto3_requests_captured_before_send() -> None:
    captured: list[AWSPreparedRequest] = []

    def before_send(request: AWSPreparedRequest, **_: object) -> AWSResponse:
        captured.append(request)
        return _fake_response(request)

    client = _client("eu-west-3")
    client.meta.events.register("before-send.batch", before_send)
    client.submit_job(jobName="j", jobQueue="q1", jobDefinition="d:1", containerOverrides={"command": ["echo", "é"]})
    client.tag_resource(resourceArn=QUEUE_ARN, tags={"k": "v w"})
    client.list_tags_for_resource(resourceArn=QUEUE_ARN)
    client.untag_resource(resourceArn=QUEUE_ARN, tagKeys=["a b", "c/d", "é"])
    client.describe_job_queues()

    assert [urlsplit(r.url).path.split("/")[2] for r in captured] == [
        "submitjob",
        "tags",
        "tags",
        "tags",
        "describejobqueues",
    ]
    assert "tagKeys=" in urlsplit(captured[3].url).query
    for request in captured:
        assert Wire.from_prepared(request).verify() == AKID, request.url


class _Capture(http.server.BaseHTTPRequestHandler):
    """Records the request exactly as it arrived over TCP and answers an empty JSON object."""

    received: list[Wire] = []

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path, _, query = self.path.partition("?")
        wire = Wire(self.command, "http://unused" + path, {}, body)
        wire.raw_path, wire.query, wire.headers = path, query, dict(self.headers.items())
        self.received.append(wire)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = do_DELETE = _handle

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass


def test_boto3_over_real_http() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Capture.received = []
    try:
        client = boto3.client(
            "batch",
            endpoint_url=f"http://127.0.0.1:{server.server_address[1]}",
            region_name="us-east-1",
            aws_access_key_id=AKID,
            aws_secret_access_key=SECRET,
            config=Config(retries={"max_attempts": 0}),
        )
        client.submit_job(jobName="j", jobQueue="q1", jobDefinition="d:1")
        client.tag_resource(resourceArn=QUEUE_ARN, tags={"k": "v"})
        client.untag_resource(resourceArn=QUEUE_ARN, tagKeys=["a b", "c/d"])
    finally:
        server.shutdown()
        server.server_close()
    assert len(_Capture.received) == 3
    assert _Capture.received[1].raw_path == f"/v1/tags/{ENCODED_QUEUE_ARN}"
    for wire in _Capture.received:
        assert wire.verify() == AKID, (wire.raw_path, wire.query)


# ----------------------------------------------------------------------------------- rejected requests


def test_missing_authorization() -> None:
    wire = Wire("POST", ENDPOINT + "/v1/submitjob", {"Content-Type": "application/json"}, b"{}")
    err = assert_auth_error(wire, "MissingAuthenticationTokenException")
    assert err.message == "Missing Authentication Token"


def test_unknown_access_key() -> None:
    wire = sign("POST", "/v1/submitjob", b"{}", access_key="GBIAUNKNOWNUNKNOWN00")
    err = assert_auth_error(wire, "UnrecognizedClientException")
    assert err.message == "The security token included in the request is invalid."


def test_wrong_secret() -> None:
    wire = sign("POST", "/v1/submitjob", b"{}", secret="not-the-secret")
    err = assert_auth_error(wire, "InvalidSignatureException")
    assert err.message.startswith("The request signature we calculated does not match the signature you provided.")


def test_body_tampered_after_signing() -> None:
    wire = sign("POST", "/v1/submitjob", b'{"jobName": "a"}')
    wire.body = b'{"jobName": "b"}'
    assert_auth_error(wire, "InvalidSignatureException")


def test_body_tampered_with_content_sha256_header() -> None:
    body = b'{"jobName": "a"}'
    wire = sign("POST", "/v1/submitjob", body, {"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
    wire.body = b'{"jobName": "b"}'
    assert_auth_error(wire, "XAmzContentSHA256Mismatch", status=400)


def test_signed_header_tampered() -> None:
    wire = sign("POST", "/v1/submitjob", b"{}", {"Content-Type": "application/json"})
    wire.headers["Content-Type"] = "text/plain"
    assert_auth_error(wire, "InvalidSignatureException")


def test_path_and_query_tampered() -> None:
    wire = sign("GET", "/v1/tags/a?x=1")
    wire.raw_path = "/v1/tags/b"
    assert_auth_error(wire, "InvalidSignatureException")
    wire = sign("GET", "/v1/tags/a?x=1")
    wire.query = "x=2"
    assert_auth_error(wire, "InvalidSignatureException")


def test_expired_and_future_signatures() -> None:
    wire = sign("POST", "/v1/submitjob", b"{}")
    err = assert_auth_error(wire, "InvalidSignatureException", now=datetime.now(UTC) + timedelta(days=1))
    assert err.message.startswith("Signature expired: ")
    assert "- 15 min.)" in err.message
    err = assert_auth_error(wire, "InvalidSignatureException", now=datetime.now(UTC) - timedelta(hours=1))
    assert err.message.startswith("Signature not yet current: ")
    # Within the allowed skew both ways.
    assert wire.verify(now=datetime.now(UTC) + timedelta(minutes=10)) == AKID
    assert wire.verify(now=datetime.now(UTC) - timedelta(minutes=10)) == AKID


def test_malformed_authorization_headers() -> None:
    wire = sign("POST", "/v1/submitjob", b"{}")
    good = wire.headers["Authorization"]
    cases = {
        "Bearer abc": "requires 'Credential' parameter",
        good.replace("Signature=", "Sig="): "requires 'Signature' parameter",
        good.replace("Credential=", "Credential "): "missing equal-sign",
        good.replace(f"{AKID}/", f"{AKID}/extra/"): "exactly 5 slash-delimited elements",
        good.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512"): "Unsupported AWS 'algorithm'",
    }
    for header, fragment in cases.items():
        wire.headers["Authorization"] = header
        err = assert_auth_error(wire, "IncompleteSignatureException")
        assert fragment in err.message, (header, err.message)


def test_missing_or_bad_date() -> None:
    wire = sign("POST", "/v1/submitjob", b"{}")
    wire.headers["X-Amz-Date"] = "2024-01-01T00:00:00Z"
    assert "ISO-8601" in assert_auth_error(wire, "IncompleteSignatureException").message
    del wire.headers["X-Amz-Date"]
    assert "'X-Amz-Date' or a 'Date'" in assert_auth_error(wire, "IncompleteSignatureException").message


def test_scope_errors() -> None:
    wire = sign("POST", "/v1/submitjob", b"{}", service="ecs")
    assert "correct service: 'batch'" in assert_auth_error(wire, "InvalidSignatureException").message
    wire = sign("POST", "/v1/submitjob", b"{}")
    wire.headers["Authorization"] = wire.headers["Authorization"].replace("/aws4_request", "/aws5_request")
    assert "terminator" in assert_auth_error(wire, "InvalidSignatureException").message
    wire = sign("POST", "/v1/submitjob", b"{}")
    date = wire.headers["X-Amz-Date"][:8]
    wire.headers["Authorization"] = wire.headers["Authorization"].replace(f"/{date}/", "/20000101/")
    assert "Date in Credential scope" in assert_auth_error(wire, "InvalidSignatureException").message


def test_signed_header_absent_from_request() -> None:
    wire = sign("POST", "/v1/submitjob", b"{}", {"Content-Type": "application/json"})
    del wire.headers["Content-Type"]
    err = assert_auth_error(wire, "IncompleteSignatureException")
    assert "'content-type' is named as a SignedHeader" in err.message


def test_garbage_signature_is_a_mismatch_not_a_crash() -> None:
    wire = sign("POST", "/v1/submitjob", b"{}")
    head, _, _ = wire.headers["Authorization"].rpartition("Signature=")
    wire.headers["Authorization"] = head + "Signature=\u00e9\u00e9"
    assert_auth_error(wire, "InvalidSignatureException")


def test_both_header_and_query_auth() -> None:
    wire = sign("GET", "/v1/x?X-Amz-Signature=abc")
    assert "Only one auth mechanism" in assert_auth_error(wire, "IncompleteSignatureException").message


# ----------------------------------------------------------------------------------- key store


def test_keystore_creates_primary_with_private_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EXTRA_KEYS_ENV, raising=False)
    data_dir = tmp_path / "nested" / "home"
    store = KeyStore.load_or_create(data_dir)
    path = data_dir / CREDENTIALS_FILE
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    primary = store.primary
    assert len(primary.access_key_id) == 20
    assert primary.access_key_id.startswith("GBIA")
    assert primary.access_key_id.isalnum() and primary.access_key_id.isupper()
    assert len(primary.secret_access_key) == 40
    assert store.secret_for(primary.access_key_id) == primary.secret_access_key
    assert store.secret_for("GBIANOPE") is None
    assert store.keys() == [primary]
    assert primary.secret_access_key not in repr(primary)
    assert not [p for p in data_dir.iterdir() if p.name != CREDENTIALS_FILE], "temporary files left behind"


def test_keystore_persists_and_adds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EXTRA_KEYS_ENV, raising=False)
    first = KeyStore.load_or_create(tmp_path)
    again = KeyStore.load_or_create(tmp_path)
    assert again.primary == first.primary
    added = first.add("ci runner")
    assert added.description == "ci runner"
    assert added.access_key_id != first.primary.access_key_id
    assert first.secret_for(added.access_key_id) == added.secret_access_key
    assert stat.S_IMODE((tmp_path / CREDENTIALS_FILE).stat().st_mode) == 0o600
    reloaded = KeyStore.load_or_create(tmp_path)
    assert reloaded.keys() == [first.primary, added]
    assert reloaded.primary == first.primary
    # A store loaded before the add does not lose it when it adds one of its own.
    again.add("other")
    pairs = KeyStore.load_or_create(tmp_path).keys()
    assert [k.description for k in pairs] == ["primary", "ci runner", "other"]


def test_keystore_extra_keys_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EXTRA_KEYS_ENV, "AKIDONE:secretone, AKIDTWO:secret:two ,")
    store = KeyStore.load_or_create(tmp_path)
    assert store.secret_for("AKIDONE") == "secretone"
    assert store.secret_for("AKIDTWO") == "secret:two"
    pairs = store.keys()
    assert [k.access_key_id for k in pairs][1:] == ["AKIDONE", "AKIDTWO"]
    # Not persisted: without the variable they are gone.
    assert "AKIDONE" not in (tmp_path / CREDENTIALS_FILE).read_text()
    monkeypatch.delenv(EXTRA_KEYS_ENV)
    assert KeyStore.load_or_create(tmp_path).secret_for("AKIDONE") is None


def test_keystore_rejects_malformed_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EXTRA_KEYS_ENV, "AKIDONE-without-secret")
    with pytest.raises(ValueError, match=EXTRA_KEYS_ENV):
        KeyStore.load_or_create(tmp_path)


@pytest.mark.parametrize(
    "content",
    ["{not json", "[]", '{"keys": []}', '{"keys": [{"access_key_id": "A"}]}', '{"version": 9, "keys": [1]}'],
)
def test_keystore_corrupt_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str) -> None:
    monkeypatch.delenv(EXTRA_KEYS_ENV, raising=False)
    path = tmp_path / CREDENTIALS_FILE
    path.write_text(content)
    with pytest.raises(ValueError, match=str(path)):
        KeyStore.load_or_create(tmp_path)


def test_keystore_verifies_botocore_signatures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EXTRA_KEYS_ENV, raising=False)
    store = KeyStore.load_or_create(tmp_path)
    pair: KeyPair = store.primary
    wire = sign("POST", "/v1/submitjob", b"{}", access_key=pair.access_key_id, secret=pair.secret_access_key)
    assert wire.verify(lookup=store.secret_for) == pair.access_key_id


def test_keystore_primary_survives_concurrent_first_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EXTRA_KEYS_ENV, raising=False)
    stores: list[KeyStore] = []
    threads = [threading.Thread(target=lambda: stores.append(KeyStore.load_or_create(tmp_path))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    on_disk = KeyStore.load_or_create(tmp_path).primary
    assert {s.primary for s in stores} == {on_disk}
    assert os.listdir(tmp_path) == [CREDENTIALS_FILE]

"""The CLI's handle on a genobatch server: where it is, which region and keys to sign with.

Discovery order, most explicit first:

* endpoint: ``--endpoint`` / ``$GENOBATCH_ENDPOINT``, else ``server.json`` in the data directory
  (written by a running server), else ``http://127.0.0.1:8741``;
* region: ``--region``, else the server's (from ``server.json``), else ``$AWS_REGION`` /
  ``$AWS_DEFAULT_REGION``, else ``us-east-1``;
* credentials: ``$GENOBATCH_ACCESS_KEY_ID`` + ``$GENOBATCH_SECRET_ACCESS_KEY``, else the primary key
  of the data directory's ``credentials.json``.

Everything is resolved lazily so that commands which never talk to a server (``server``,
``--help``) never read files or build a boto3 client.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from genobatch.cli.errors import CliError
from genobatch.config import DEFAULT_PORT, DEFAULT_REGION, Settings
from genobatch.credentials import KeyStore

DEFAULT_ENDPOINT = f"http://127.0.0.1:{DEFAULT_PORT}"
ACCESS_KEY_ENV = "GENOBATCH_ACCESS_KEY_ID"
SECRET_KEY_ENV = "GENOBATCH_SECRET_ACCESS_KEY"


@dataclass(frozen=True)
class SigningKey:
    """The access key pair requests are signed with, and where it came from (for messages)."""

    access_key_id: str
    secret_access_key: str
    source: str


def read_server_file(data_dir: Path) -> dict[str, Any]:
    """The running server's ``server.json``, or ``{}`` when absent or unreadable.

    A damaged file is ignored rather than fatal: the fallback endpoint usually works, and if it
    does not, the "no server" message says which endpoint was tried.
    """
    path = Settings(data_dir=data_dir).server_file
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def load_primary_key(data_dir: Path) -> SigningKey:
    """The data directory's primary key, creating the credentials file if it does not exist yet."""
    try:
        pair = KeyStore.load_or_create(data_dir).primary
    except (OSError, ValueError, KeyError) as exc:
        raise CliError(f"cannot read credentials in {data_dir}: {exc}") from exc
    return SigningKey(pair.access_key_id, pair.secret_access_key, f"{data_dir}/credentials.json")


def signing_key(data_dir: Path) -> SigningKey:
    """Keys from the environment when both are set, else the data directory's primary key."""
    access, secret = os.environ.get(ACCESS_KEY_ENV), os.environ.get(SECRET_KEY_ENV)
    if access and secret:
        return SigningKey(access, secret, "environment")
    if access or secret:
        raise CliError(f"set both {ACCESS_KEY_ENV} and {SECRET_KEY_ENV}, or neither")
    return load_primary_key(data_dir)


class Client:
    """Endpoint, region and keys for one CLI invocation, plus the boto3 Batch client built from them."""

    def __init__(self, data_dir: Path, endpoint: str | None = None, region: str | None = None) -> None:
        self.data_dir = data_dir
        self._endpoint = endpoint
        self._region = region

    def with_data_dir(self, data_dir: Path) -> Client:
        """The same endpoint and region choices for another data directory."""
        return Client(data_dir, self._endpoint, self._region)

    def unknown_key_hint(self) -> str:
        """Why the server may not know our key (UnrecognizedClientException), and what to do.

        The usual cause: the endpoint belongs to another data directory's server (the default
        port is shared by every data directory), so it knows other keys.
        """
        key = self.key
        ours = read_server_file(self.data_dir).get("endpoint", "")
        said = f"the server at {self.endpoint} does not know access key {key.access_key_id} (from {key.source})"
        if key.source == "environment":
            return f"{said}; check {ACCESS_KEY_ENV} and {SECRET_KEY_ENV}, or unset them to use {self.data_dir}'s key"
        if ours.rstrip("/") == self.endpoint:
            return (
                f"{said}, although it is {self.data_dir}'s server: was credentials.json replaced after it started? "
                "Restart it: genobatch server stop, then start it again"
            )
        where = f"its server is at {ours}" if ours else "no server is running for it"
        return (
            f"{said}: it is not the server of data directory {self.data_dir} ({where}), so it is probably another "
            f"data directory's. Use that one's keys (--data-dir), or start a server for {self.data_dir} on a free "
            f"port: genobatch --data-dir {self.data_dir} server --detach --port PORT"
        )

    @cached_property
    def server_info(self) -> dict[str, Any]:
        """``server.json``, but only when it describes the server we are talking to."""
        info = read_server_file(self.data_dir)
        if self._endpoint and info.get("endpoint", "").rstrip("/") != self._endpoint.rstrip("/"):
            return {}  # an explicit endpoint elsewhere: that file's region says nothing about it
        return info

    @cached_property
    def endpoint(self) -> str:
        """Base URL of the server, without a trailing slash."""
        chosen = self._endpoint or self.server_info.get("endpoint") or DEFAULT_ENDPOINT
        return str(chosen).rstrip("/")

    @cached_property
    def region(self) -> str:
        """The region to sign for; a SigV4 signature for another region is rejected."""
        return (
            self._region
            or self.server_info.get("region")
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or DEFAULT_REGION
        )

    @cached_property
    def key(self) -> SigningKey:
        """The access key pair to sign with."""
        return signing_key(self.data_dir)

    @cached_property
    def batch(self) -> Any:
        """A boto3 Batch client aimed at the server: the CLI speaks the same API users do."""
        import boto3
        from botocore.config import Config

        # Few retries and a short connect timeout: a local server is either there or not, and
        # "no server" should be reported in seconds rather than after botocore's long backoff.
        config = Config(
            retries={"total_max_attempts": 2, "mode": "standard"},
            connect_timeout=3,
            read_timeout=60,
        )
        return boto3.client(
            "batch",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.key.access_key_id,
            aws_secret_access_key=self.key.secret_access_key,
            config=config,
        )

    def native_get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET a genobatch-specific endpoint (outside the Batch API), signed like boto3 signs."""
        from genobatch.cli.native import signed_get

        return signed_get(self.endpoint, path, params or {}, self.region, self.key)

"""The ``genobatch`` command line: parsing, resource files, request building and error rendering.

Most tests replace the boto3 client with :class:`FakeBatch`, which records the calls a command
makes, so they check exactly what would go on the wire without a server. The no-server tests use
the real client against a port nobody listens on. One end-to-end test runs a real server as a
subprocess when the server module is importable.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner, Result

from genobatch.cli import logs_cmd
from genobatch.cli.client import Client, read_server_file
from genobatch.cli.main import cli
from genobatch.cli.native import signed_headers
from genobatch.cli.resource_files import load_requests
from genobatch.cli.submit_cmd import ADHOC_CONTAINER, ADHOC_DEFINITION, parse_dependency

ENV_TO_CLEAR = (
    "GENOBATCH_ENDPOINT",
    "GENOBATCH_ACCESS_KEY_ID",
    "GENOBATCH_SECRET_ACCESS_KEY",
    "GENOBATCH_EXTRA_KEYS",
    "GENOBATCH_DB",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_BATCH",
    "AWS_PROFILE",
)


# ----------------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data directory and no inherited endpoint, keys or region."""
    for name in ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("GENOBATCH_HOME", str(home))
    return home


class FakePaginator:
    """Serves pages from FakeBatch.pages, recording each paginate() call's parameters."""

    def __init__(self, batch: FakeBatch, operation: str) -> None:
        self.batch, self.operation = batch, operation

    def paginate(self, **params: Any) -> Iterator[dict[str, Any]]:
        self.batch.calls.append((f"paginate:{self.operation}", params))
        yield from self.batch.pages(self.operation, params)


class FakeBatch:
    """Stands in for the boto3 Batch client: records calls, answers from ``responses``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.responses: dict[str, Any] = {}
        self.listed: dict[str, list[dict[str, Any]]] = {}

    def pages(self, operation: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        if operation == "list_jobs":
            return [{"jobSummaryList": self.listed.get(params.get("jobStatus", "RUNNING"), [])}]
        return self.responses.get(operation, [{}])

    def get_paginator(self, operation: str) -> FakePaginator:
        return FakePaginator(self, operation)

    def __getattr__(self, operation: str) -> Any:
        def call(**params: Any) -> Any:
            self.calls.append((operation, params))
            answer = self.responses.get(operation, {})
            if isinstance(answer, Exception):
                raise answer
            return answer(**params) if callable(answer) else answer

        return call

    def called(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == operation]


@pytest.fixture
def batch(monkeypatch: pytest.MonkeyPatch) -> FakeBatch:
    """A FakeBatch that every Client in the test uses instead of boto3."""
    fake = FakeBatch()
    monkeypatch.setattr(Client, "batch", fake)
    return fake


def run(*args: str, stdin: str | None = None) -> Result:
    """Invoke the CLI in-process."""
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


def free_port() -> int:
    """A TCP port nothing listens on (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def client_error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "SubmitJob")


# ----------------------------------------------------------------------------------- surface


def test_help_lists_every_command() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in (
        "server",
        "init",
        "credentials",
        "submit",
        "jobs",
        "describe",
        "logs",
        "cancel",
        "terminate",
        "create",
        "register",
        "queues",
        "compute-environments",
        "definitions",
    ):
        assert command in result.output


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "genobatch", "--version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert "genobatch" in result.stdout


# ----------------------------------------------------------------------------------- submit


def test_submit_command_registers_adhoc_definition_and_overrides(batch: FakeBatch) -> None:
    batch.responses["register_job_definition"] = {"jobDefinitionArn": "arn:def/genobatch-adhoc:1"}
    batch.responses["submit_job"] = {"jobId": "job-1", "jobName": "hello", "jobArn": "arn:job/job-1"}
    result = run(
        "submit", "hello", "--queue", "q", "--vcpus", "2", "--memory", "512", "--gpus", "1",
        "--env", "A=1", "--env", "B=x=y", "--parameter", "p=v", "--attempts", "3", "--timeout", "90",
        "--priority", "5", "--tag", "team=genomics", "--array-size", "4",
        "--depends-on", "parent", "--depends-on", "other:N_TO_N", "--depends-on", "arr:2:sequential",
        "--", "echo", "hello", "--not-an-option",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "job-1"
    (registered,) = batch.called("register_job_definition")
    assert registered == {
        "jobDefinitionName": ADHOC_DEFINITION,
        "type": "container",
        "containerProperties": ADHOC_CONTAINER,
    }
    (request,) = batch.called("submit_job")
    assert request == {
        "jobName": "hello",
        "jobQueue": "q",
        "jobDefinition": "arn:def/genobatch-adhoc:1",
        "containerOverrides": {
            "command": ["echo", "hello", "--not-an-option"],
            "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "x=y"}],
            "resourceRequirements": [
                {"type": "VCPU", "value": "2"},
                {"type": "MEMORY", "value": "512"},
                {"type": "GPU", "value": "1"},
            ],
        },
        "arrayProperties": {"size": 4},
        "dependsOn": [
            {"jobId": "parent"},
            {"jobId": "other", "type": "N_TO_N"},
            {"jobId": "arr:2", "type": "SEQUENTIAL"},
        ],
        "parameters": {"p": "v"},
        "retryStrategy": {"attempts": 3},
        "timeout": {"attemptDurationSeconds": 90},
        "schedulingPriorityOverride": 5,
        "tags": {"team": "genomics"},
    }


def test_submit_reuses_an_identical_adhoc_definition(batch: FakeBatch) -> None:
    existing = {
        "jobDefinitionName": ADHOC_DEFINITION,
        "jobDefinitionArn": "arn:def/genobatch-adhoc:2",
        "revision": 2,
        "type": "container",
        "status": "ACTIVE",
        # Same requirements in another order, plus fields the server fills in: still identical.
        "containerProperties": {
            "image": "host",
            "resourceRequirements": list(reversed(ADHOC_CONTAINER["resourceRequirements"])),
            "environment": [],
        },
    }
    batch.responses["describe_job_definitions"] = [{"jobDefinitions": [existing]}]
    batch.responses["submit_job"] = {"jobId": "job-2"}
    result = run("submit", "again", "--", "true")
    assert result.exit_code == 0, result.output
    assert batch.called("register_job_definition") == []
    assert batch.called("submit_job")[0]["jobDefinition"] == "arn:def/genobatch-adhoc:2"
    assert batch.called("submit_job")[0]["jobQueue"] == "default"


def test_submit_with_definition_sends_only_what_was_given(batch: FakeBatch) -> None:
    batch.responses["submit_job"] = {"jobId": "job-3", "jobName": "x"}
    result = run("submit", "x", "--definition", "bwa:3", "--json")
    assert result.exit_code == 0, result.output
    assert batch.called("submit_job") == [{"jobName": "x", "jobQueue": "default", "jobDefinition": "bwa:3"}]
    assert json.loads(result.stdout) == {"jobId": "job-3", "jobName": "x"}


def test_submit_without_definition_or_command_is_an_error(batch: FakeBatch) -> None:
    result = run("submit", "nothing")
    assert result.exit_code == 1
    assert "error: give a job definition (--definition) or a command after --" in result.stderr
    assert batch.calls == []


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--env", "NOEQUALS"], "expected KEY=VALUE"),
        (["--tag", "=v"], "expected KEY=VALUE"),
        (["--depends-on", ":N_TO_N"], "no job id"),
        (["--array-size", "1"], "--array-size"),
        (["--vcpus", "0"], "--vcpus"),
    ],
)
def test_submit_rejects_bad_options(batch: FakeBatch, args: list[str], problem: str) -> None:
    result = run("submit", "x", *args, "--", "true")
    assert result.exit_code == 2
    assert problem in result.output
    assert batch.called("submit_job") == []


def test_dependency_parsing_keeps_array_child_ids_whole() -> None:
    assert parse_dependency("abc:3") == {"jobId": "abc:3"}
    assert parse_dependency("abc:3:N_TO_N") == {"jobId": "abc:3", "type": "N_TO_N"}
    assert parse_dependency("abc") == {"jobId": "abc"}


# ----------------------------------------------------------------------------------- jobs, describe, cancel


def summary(job_id: str, name: str, status: str, created: int, **extra: Any) -> dict[str, Any]:
    return {"jobId": job_id, "jobName": name, "status": status, "createdAt": created, **extra}


def test_jobs_queries_every_status_and_lists_newest_first(batch: FakeBatch) -> None:
    batch.listed = {
        "RUNNING": [summary("j-old", "align", "RUNNING", 1_000)],
        "SUCCEEDED": [summary("j-new", "call", "SUCCEEDED", 2_000, container={"exitCode": 0})],
        "FAILED": [summary("j-mid", "align-2", "FAILED", 1_500, statusReason="Essential container exited")],
    }
    result = run("jobs", "--queue", "q")
    assert result.exit_code == 0, result.output
    statuses = [p["jobStatus"] for name, p in batch.calls if name == "paginate:list_jobs"]
    assert statuses == ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"]
    assert all(p["jobQueue"] == "q" for name, p in batch.calls if name == "paginate:list_jobs")
    lines = result.stdout.splitlines()
    assert "JOB ID" in lines[0] and "EXIT" in lines[0]
    assert [line.split()[0] for line in lines[1:]] == ["j-new", "j-mid", "j-old"]
    assert "Essential container exited" in result.stdout


def test_jobs_filters_by_status_name_and_limit(batch: FakeBatch) -> None:
    batch.listed = {
        "RUNNING": [summary(f"j{i}", f"align-{i}", "RUNNING", i) for i in range(5)]
        + [summary("other", "call", "RUNNING", 9)],
    }
    result = run("jobs", "--queue", "q", "--status", "running", "--name", "ALIGN-*", "--limit", "2", "--json")
    assert result.exit_code == 0, result.output
    assert [p["jobStatus"] for name, p in batch.calls if name == "paginate:list_jobs"] == ["RUNNING"]
    assert [j["jobId"] for j in json.loads(result.stdout)] == ["j4", "j3"]


def test_jobs_array_lists_children_by_index(batch: FakeBatch) -> None:
    batch.listed = {
        "SUCCEEDED": [summary(f"p:{i}", "arr", "SUCCEEDED", 5, arrayProperties={"index": i}) for i in (2, 0, 1)]
    }
    result = run("jobs", "--array", "p", "--json")
    assert [j["jobId"] for j in json.loads(result.stdout)] == ["p:0", "p:1", "p:2"]
    assert all(p == {"jobStatus": p["jobStatus"], "arrayJobId": "p"} for _, p in batch.calls)


def test_jobs_status_and_all_exclude_each_other(batch: FakeBatch) -> None:
    result = run("jobs", "--status", "FAILED", "--all")
    assert result.exit_code == 2
    assert "exclude each other" in result.output


def test_describe_renders_attempts_container_and_array(batch: FakeBatch) -> None:
    batch.responses["describe_jobs"] = {
        "jobs": [
            {
                "jobId": "j1",
                "jobName": "align",
                "status": "FAILED",
                "statusReason": "Essential container in task exited",
                "jobQueue": "arn:queue/default",
                "jobDefinition": "arn:def/bwa:1",
                "createdAt": 1_700_000_000_000,
                "arrayProperties": {"size": 3, "statusSummary": {"FAILED": 1, "SUCCEEDED": 2}},
                "container": {
                    "image": "host",
                    "command": ["bwa", "mem", "[ref]"],
                    "environment": [{"name": "THREADS", "value": "4"}],
                    "resourceRequirements": [{"type": "VCPU", "value": "4"}, {"type": "MEMORY", "value": "8192"}],
                    "exitCode": 137,
                    "reason": "OutOfMemoryError: Container killed due to memory usage",
                },
                "attempts": [
                    {"container": {"exitCode": 137}, "startedAt": 1, "stoppedAt": 2, "statusReason": "oom"},
                ],
            }
        ]
    }
    result = run("describe", "j1")
    assert result.exit_code == 0, result.output
    for expected in (
        "align",
        "Essential container in task exited",
        "bwa mem [ref]",
        "THREADS=4",
        "4 vCPU, 8192 MiB",
        "OutOfMemoryError",
        "size 3",
        "SUCCEEDED 2",
        "attempts",
        "137",
    ):
        assert expected in result.stdout


def test_describe_reports_missing_jobs(batch: FakeBatch) -> None:
    batch.responses["describe_jobs"] = {"jobs": [{"jobId": "j1", "jobName": "a", "status": "RUNNING"}]}
    result = run("describe", "j1", "nope", "--json")
    assert result.exit_code == 1
    assert [j["jobId"] for j in json.loads(result.stdout)] == ["j1"]
    assert "error: no such job: nope" in result.stderr


def test_cancel_carries_on_past_a_failure(batch: FakeBatch) -> None:
    def cancel_job(jobId: str, reason: str) -> dict[str, Any]:  # noqa: N803 - the API's casing
        if jobId == "bad":
            raise client_error("ClientException", "job bad not found")
        return {}

    batch.responses["cancel_job"] = cancel_job
    result = run("cancel", "a", "bad", "b", "--reason", "oops")
    assert result.exit_code == 1
    assert [p["jobId"] for p in batch.called("cancel_job")] == ["a", "bad", "b"]
    assert all(p["reason"] == "oops" for p in batch.called("cancel_job"))
    assert "cancelled a" in result.stdout and "cancelled b" in result.stdout
    assert "error: bad: ClientException: job bad not found" in result.stderr


def test_terminate_sends_a_default_reason(batch: FakeBatch) -> None:
    result = run("terminate", "a")
    assert result.exit_code == 0
    assert batch.called("terminate_job") == [{"jobId": "a", "reason": "Terminated with genobatch terminate"}]


# ----------------------------------------------------------------------------------- logs


def test_logs_follow_polls_until_complete(monkeypatch: pytest.MonkeyPatch, batch: FakeBatch) -> None:
    batch.responses["describe_jobs"] = {"jobs": [{"jobId": "abc:1", "status": "RUNNING"}]}
    chunks = iter(
        [
            {"attempt": 2, "offset": 0, "nextOffset": 6, "data": "hello\n", "complete": False},
            {"attempt": 2, "offset": 6, "nextOffset": 6, "data": "", "complete": False},
            {"attempt": 2, "offset": 6, "nextOffset": 12, "data": "[done]", "complete": True},
        ]
    )
    asked: list[tuple[str, dict[str, Any]]] = []

    def native_get(self: Client, path: str, params: dict[str, Any]) -> dict[str, Any]:
        asked.append((path, params))
        return next(chunks)

    monkeypatch.setattr(Client, "native_get", native_get)
    monkeypatch.setattr(logs_cmd, "POLL_INTERVAL_S", 0)
    result = run("logs", "abc:1", "-f")
    assert result.exit_code == 0, result.output
    assert result.stdout == "hello\n[done]"
    assert asked[0] == ("/genobatch/v1/jobs/abc:1/logs", {"attempt": None, "offset": 0})
    # Once the server named the attempt, later polls stay on it.
    assert asked[1:] == [
        ("/genobatch/v1/jobs/abc:1/logs", {"attempt": 2, "offset": 6}),
        ("/genobatch/v1/jobs/abc:1/logs", {"attempt": 2, "offset": 6}),
    ]


def test_logs_without_follow_stops_when_nothing_new(monkeypatch: pytest.MonkeyPatch, batch: FakeBatch) -> None:
    batch.responses["describe_jobs"] = {"jobs": [{"jobId": "j", "status": "SUCCEEDED"}]}
    chunks = iter([{"attempt": 1, "nextOffset": 3, "data": "abc", "complete": False}, {"data": "", "nextOffset": 3}])
    monkeypatch.setattr(Client, "native_get", lambda self, path, params: next(chunks))
    result = run("logs", "j", "--attempt", "1")
    assert result.exit_code == 0
    assert result.stdout == "abc"


def test_native_requests_are_signed_like_boto3() -> None:
    from genobatch.api.auth import verify_sigv4
    from genobatch.cli.client import SigningKey

    key = SigningKey("GBIATESTTESTTESTTEST", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "test")
    url = "http://127.0.0.1:8741/genobatch/v1/jobs/abc:3/logs?attempt=1&offset=0"
    headers = signed_headers(url, "eu-west-1", key)
    assert "/eu-west-1/batch/aws4_request" in headers["Authorization"]
    headers["Host"] = "127.0.0.1:8741"
    secrets = {key.access_key_id: key.secret_access_key}
    assert (
        verify_sigv4("GET", "/genobatch/v1/jobs/abc:3/logs", "attempt=1&offset=0", headers, b"", secrets.get)
        == key.access_key_id
    )


class LogsHandler(http.server.BaseHTTPRequestHandler):
    """A stand-in native endpoint: checks the signature, serves one log, 404s unknown jobs."""

    secrets: ClassVar[dict[str, str]] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        from genobatch.api.auth import AuthError, verify_sigv4

        path, _, query = self.path.partition("?")
        try:
            verify_sigv4("GET", path, query, dict(self.headers.items()), b"", self.secrets.get)
        except AuthError as error:
            self.reply(403, {"message": error.message}, error.code)
            return
        if path != "/genobatch/v1/jobs/j1:0/logs":
            self.reply(404, {"__type": "ClientException", "message": "job nope not found"})
            return
        self.reply(200, {"jobId": "j1:0", "attempt": 1, "offset": 0, "nextOffset": 3, "data": "hi\n", "complete": True})

    def reply(self, status: int, body: dict[str, Any], error_type: str | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if error_type:
            self.send_header("x-amzn-ErrorType", error_type)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        pass  # keep test output clean


@pytest.fixture
def logs_endpoint(isolated_env: Path) -> Iterator[str]:
    """A LogsHandler server that accepts the data directory's primary key."""
    from genobatch.credentials import KeyStore

    primary = KeyStore.load_or_create(isolated_env).primary
    LogsHandler.secrets = {primary.access_key_id: primary.secret_access_key}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), LogsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_logs_over_http_signed_with_the_primary_key(logs_endpoint: str) -> None:
    result = run("--endpoint", logs_endpoint, "logs", "j1:0")
    assert result.exit_code == 0, result.output
    assert result.stdout == "hi\n"


def test_logs_error_responses_are_code_and_message(logs_endpoint: str) -> None:
    result = run("--endpoint", logs_endpoint, "logs", "nope")
    assert result.exit_code == 1
    assert result.stderr == "error: ClientException: job nope not found\n"


def test_logs_with_a_wrong_key_is_refused(logs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENOBATCH_ACCESS_KEY_ID", "GBIAWRONGWRONGWRONG0")
    monkeypatch.setenv("GENOBATCH_SECRET_ACCESS_KEY", "x" * 40)
    result = run("--endpoint", logs_endpoint, "logs", "j1:0")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: UnrecognizedClientException: ")


# ----------------------------------------------------------------------------------- resource files


def test_create_compute_environments_from_a_yaml_list(tmp_path: Path, batch: FakeBatch) -> None:
    spec = tmp_path / "ces.yaml"
    spec.write_text(
        "- computeEnvironmentName: small\n  type: UNMANAGED\n"
        "- computeEnvironmentName: big\n  type: MANAGED\n  computeResources: {type: EC2, maxvCpus: 64}\n"
    )
    batch.responses["create_compute_environment"] = lambda **p: {
        "computeEnvironmentName": p["computeEnvironmentName"],
        "computeEnvironmentArn": f"arn:ce/{p['computeEnvironmentName']}",
    }
    result = run("create", "compute-environment", str(spec))
    assert result.exit_code == 0, result.output
    assert [p["computeEnvironmentName"] for p in batch.called("create_compute_environment")] == ["small", "big"]
    assert batch.called("create_compute_environment")[1]["computeResources"] == {"type": "EC2", "maxvCpus": 64}
    assert "created compute environment big (arn:ce/big)" in result.stdout


def test_create_job_queue_from_json(tmp_path: Path, batch: FakeBatch) -> None:
    body = {"jobQueueName": "q", "priority": 1, "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "c"}]}
    spec = tmp_path / "q.json"
    spec.write_text(json.dumps(body))
    result = run("create", "job-queue", str(spec))
    assert result.exit_code == 0, result.output
    assert batch.called("create_job_queue") == [body]


def test_register_job_definition_from_stdin(batch: FakeBatch) -> None:
    batch.responses["register_job_definition"] = {"jobDefinitionName": "d", "revision": 4, "jobDefinitionArn": "a"}
    result = run("register", "job-definition", "-", stdin="jobDefinitionName: d\ntype: container\n")
    assert result.exit_code == 0, result.output
    assert batch.called("register_job_definition") == [{"jobDefinitionName": "d", "type": "container"}]
    assert "registered job definition d:4" in result.stdout


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("bad.json", '{"jobQueueName": "q",\n "priority": }', "invalid JSON at line 2 column"),
        ("bad.yaml", "jobQueueName: q\n  priority: [1\n", "invalid YAML at line"),
        ("empty.yaml", "", "is empty"),
        ("scalar.yaml", "just a string\n", "expected a mapping"),
        ("list.yaml", "- jobQueueName: q\n- 3\n", "item 2 is a int"),
        ("emptylist.json", "[]", "empty list"),
    ],
)
def test_bad_resource_files_name_the_file_and_problem(
    tmp_path: Path, batch: FakeBatch, name: str, content: str, problem: str
) -> None:
    spec = tmp_path / name
    spec.write_text(content)
    result = run("create", "job-queue", str(spec))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {spec}: ")
    assert problem in result.stderr
    assert "Traceback" not in result.output
    assert batch.called("create_job_queue") == []


def test_missing_resource_file(tmp_path: Path, batch: FakeBatch) -> None:
    result = run("register", "job-definition", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1
    assert f"error: {tmp_path / 'nope.yaml'}: no such file" in result.stderr


def test_unknown_request_field_is_reported_with_the_file(tmp_path: Path) -> None:
    # The real client: botocore validates against the Batch model before any connection is made.
    spec = tmp_path / "q.yaml"
    spec.write_text("jobQueueName: q\ncolour: red\n")
    result = run("--endpoint", f"http://127.0.0.1:{free_port()}", "create", "job-queue", str(spec))
    assert result.exit_code == 1
    assert f"error: {spec}: Parameter validation failed" in result.stderr
    assert "colour" in result.stderr


def test_load_requests_reads_json_with_yaml_suffix(tmp_path: Path) -> None:
    spec = tmp_path / "d.yml"
    spec.write_text('[{"jobDefinitionName": "a"}, {"jobDefinitionName": "b"}]')
    assert load_requests(str(spec)) == [{"jobDefinitionName": "a"}, {"jobDefinitionName": "b"}]


# ----------------------------------------------------------------------------------- errors, discovery


@pytest.mark.parametrize(
    "args",
    [
        ["jobs"],
        ["describe", "j1"],
        ["queues"],
        ["definitions"],
        ["submit", "x", "--", "true"],
        ["logs", "j1"],
        ["cancel", "j1"],
    ],
)
def test_no_server_is_one_clear_line(args: list[str]) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = run("--endpoint", endpoint, *args)
    assert result.exit_code == 1
    assert result.stderr == f"error: no genobatch server at {endpoint} (start one with: genobatch server)\n"
    assert result.stdout == ""
    assert time.monotonic() - started < 15  # few retries, short timeouts


def test_endpoint_and_region_come_from_server_json(isolated_env: Path) -> None:
    port = free_port()
    isolated_env.mkdir(parents=True)
    (isolated_env / "server.json").write_text(
        json.dumps({"endpoint": f"http://127.0.0.1:{port}", "pid": 1, "region": "eu-west-1", "auth": True})
    )
    client = Client(isolated_env)
    assert (client.endpoint, client.region) == (f"http://127.0.0.1:{port}", "eu-west-1")
    result = run("jobs")
    assert f"no genobatch server at http://127.0.0.1:{port}" in result.stderr
    # An explicit endpoint elsewhere ignores the file's region.
    assert Client(isolated_env, endpoint="http://other:1").region == "us-east-1"


def test_damaged_server_json_is_ignored(isolated_env: Path) -> None:
    isolated_env.mkdir(parents=True)
    (isolated_env / "server.json").write_text("{not json")
    assert read_server_file(isolated_env) == {}
    assert Client(isolated_env).endpoint == "http://127.0.0.1:8741"


def test_api_errors_are_code_and_message_without_traceback(batch: FakeBatch) -> None:
    batch.responses["submit_job"] = client_error("ClientException", "Job queue nope does not exist [really]")
    result = run("submit", "x", "--definition", "d", "--queue", "nope")
    assert result.exit_code == 1
    assert result.stderr == "error: ClientException: Job queue nope does not exist [really]\n"


# ----------------------------------------------------------------------------------- init, credentials, server


def test_init_creates_credentials_and_credentials_prints_them(isolated_env: Path) -> None:
    result = run("init")
    assert result.exit_code == 0, result.output
    stored = json.loads((isolated_env / "credentials.json").read_text())["keys"][0]
    assert stored["access_key_id"] in result.stdout
    assert "genobatch server" in result.stdout
    result = run("credentials")
    assert stored["secret_access_key"] in result.stdout
    exports = run("credentials", "--export").stdout
    assert f"export AWS_ACCESS_KEY_ID={stored['access_key_id']}" in exports
    assert "export AWS_ENDPOINT_URL_BATCH=http://127.0.0.1:8741" in exports


def test_credentials_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENOBATCH_ACCESS_KEY_ID", "AKENV")
    monkeypatch.setenv("GENOBATCH_SECRET_ACCESS_KEY", "SECRETENV")
    result = run("--endpoint", "http://h:1", "credentials", "--export")
    assert "AWS_ACCESS_KEY_ID=AKENV" in result.stdout
    assert "AWS_ENDPOINT_URL_BATCH=http://h:1" in result.stdout
    monkeypatch.delenv("GENOBATCH_SECRET_ACCESS_KEY")
    result = run("credentials")
    assert result.exit_code == 1
    assert "set both" in result.stderr


def test_server_builds_settings_from_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import types

    seen = []
    fake = types.ModuleType("genobatch.server")
    fake.serve = seen.append  # type: ignore[attr-defined]
    fake.ServerStartError = RuntimeError  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "genobatch.server", fake)
    monkeypatch.setenv("GENOBATCH_DB", "postgresql://db/x")
    result = run(
        "server", "--host", "0.0.0.0", "--port", "9000", "--data-dir", str(tmp_path / "d"), "--no-auth",
        "--cpus", "4", "--memory", "2048", "--gpus", "0", "--region", "eu-west-1", "--container-runtime", "podman",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (settings,) = seen
    assert settings.data_dir == tmp_path / "d"
    assert (settings.host, settings.port, settings.auth, settings.region) == ("0.0.0.0", 9000, False, "eu-west-1")
    assert (settings.cpus, settings.memory_mib, settings.gpus) == (4, 2048, 0)
    assert (settings.container_runtime, settings.db_url) == ("podman", "postgresql://db/x")


# ----------------------------------------------------------------------------------- live server


def server_available() -> bool:
    try:
        from genobatch.server import serve  # noqa: F401
    except ImportError:
        return False
    return True


def healthy(endpoint: str) -> bool:
    """Whether the server answers its (unauthenticated) health check."""
    try:
        with urllib.request.urlopen(f"{endpoint}/genobatch/v1/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``python -m genobatch server`` on a free port; yields (endpoint, data dir)."""
    data_dir = tmp_path / "live"
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in ENV_TO_CLEAR}
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "genobatch", "server", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        # server.json appears before the port is bound, so wait for the health endpoint too.
        while not ((data_dir / "server.json").exists() and healthy(endpoint)):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{(tmp_path / 'server.log').read_text()}")
            time.sleep(0.2)
        yield endpoint, data_dir
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.mark.slow
@pytest.mark.skipif(not server_available(), reason="genobatch.server is not importable")
def test_submit_jobs_describe_logs_against_a_live_server(
    live_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, data_dir = live_server
    monkeypatch.setenv("GENOBATCH_HOME", str(data_dir))  # endpoint and keys come from server.json
    submitted = run("submit", "hello", "--env", "WHO=world", "--", "sh", "-c", 'echo "hello $WHO"')
    assert submitted.exit_code == 0, submitted.output
    job_id = submitted.stdout.strip()

    deadline = time.monotonic() + 120
    status = ""
    while status not in ("SUCCEEDED", "FAILED"):
        assert time.monotonic() < deadline, f"job stuck in {status}"
        described = run("describe", job_id, "--json")
        assert described.exit_code == 0, described.output
        status = json.loads(described.stdout)[0]["status"]
        time.sleep(0.5)
    assert status == "SUCCEEDED", described.stdout

    listed = run("jobs", "--json")
    assert job_id in [j["jobId"] for j in json.loads(listed.stdout)]
    assert job_id in run("jobs").stdout
    assert "hello" in run("describe", job_id).stdout
    logs = run("logs", job_id, "--follow")
    assert logs.exit_code == 0, logs.output
    assert "hello world" in logs.stdout
    # The same endpoint answers plain HTTP, and boto3 users get the same keys.
    assert run("credentials", "--export").exit_code == 0
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"{endpoint}/genobatch/v1/jobs/{job_id}/logs", timeout=10)  # unsigned

"""Job logs through CloudWatch Logs' API on genobatch's endpoint: boto3's ``logs`` client and the AWS
CLI, unchanged, the way Airflow's BatchOperator (``awslogs_enabled``), Nextflow and Metaflow read them.

Every response boto3 parses here is checked against botocore's ``logs`` output shape.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import boto3
import pytest
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from harness import wait_for

GROUP = "/aws/batch/job"


def logs_client(server, **overrides):
    return server.client("logs", **{"config": Config(retries={"max_attempts": 1}), **overrides})


@pytest.fixture(scope="module")
def logs(genobatch_server):
    return logs_client(genobatch_server)


def define(batch, script: str, **container) -> str:
    name = f"logs-{uuid.uuid4().hex[:8]}"
    batch.register_job_definition(
        jobDefinitionName=name,
        type="container",
        containerProperties={
            "image": "busybox",
            "command": ["sh", "-c", script],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "128"}],
            **container,
        },
    )
    return name


def run_job(batch, definition: str, **kwargs) -> dict:
    job_id = batch.submit_job(jobName="logs", jobQueue="default", jobDefinition=definition, **kwargs)["jobId"]
    return wait_for(batch, job_id)


def all_events(logs, stream: str, group: str = GROUP, **kwargs) -> list[str]:
    response = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True, **kwargs)
    return [event["message"] for event in response["events"]]


def error_of(call, **kwargs) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    response = raised.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


def test_each_attempt_has_its_own_stream_named_as_on_aws(batch, logs):
    definition = define(batch, 'echo "attempt $AWS_BATCH_JOB_ATTEMPT"; [ "$AWS_BATCH_JOB_ATTEMPT" = 2 ]')
    detail = run_job(batch, definition, retryStrategy={"attempts": 2})
    assert detail["status"] == "SUCCEEDED"
    streams = [attempt["container"]["logStreamName"] for attempt in detail["attempts"]]
    assert len(streams) == 2 and streams[0] != streams[1]
    for stream, attempt in zip(streams, detail["attempts"], strict=True):
        assert re.fullmatch(rf"{definition}/default/[0-9a-f]{{32}}", stream)
        # The stream ends with the attempt's ECS task id, as on AWS.
        assert attempt["container"]["taskArn"].endswith("/" + stream.rsplit("/", 1)[1])
    assert detail["container"]["logStreamName"] == streams[1]
    assert all_events(logs, streams[0]) == ["attempt 1"]
    assert all_events(logs, streams[1]) == ["attempt 2"]
    # The group can also be named by ARN, as logGroupIdentifier.
    arn = f"arn:aws:logs:{logs.meta.region_name}:123456789012:log-group:{GROUP}"
    by_arn = logs.get_log_events(logGroupIdentifier=arn, logStreamName=streams[0], startFromHead=True)
    assert [e["message"] for e in by_arn["events"]] == ["attempt 1"]
    # Every event carries the attempt's start time: lines have no times of their own.
    event = logs.get_log_events(logGroupName=GROUP, logStreamName=streams[1], startFromHead=True)["events"][0]
    assert event["timestamp"] == event["ingestionTime"] == detail["attempts"][1]["startedAt"]


def test_array_children_streams_lead_to_their_own_output(batch, logs):
    definition = define(batch, 'echo "child $AWS_BATCH_JOB_ARRAY_INDEX"')
    parent = run_job(batch, definition, arrayProperties={"size": 3})
    assert parent["status"] == "SUCCEEDED"
    for index in range(3):
        child = batch.describe_jobs(jobs=[f"{parent['jobId']}:{index}"])["jobs"][0]
        stream = child["container"]["logStreamName"]
        assert re.fullmatch(rf"{definition}/default/[0-9a-f]{{32}}", stream)
        assert all_events(logs, stream) == [f"child {index}"]


def test_paging_forward_and_backward_through_a_long_log(batch, logs):
    # 2500 lines of ~500 bytes: 1.3 MB, more than one 1 MB page.
    definition = define(batch, "i=1; while [ $i -le 2500 ]; do printf 'line %05d %0490d\\n' $i 0; i=$((i+1)); done")
    stream = run_job(batch, definition)["container"]["logStreamName"]
    expected = [f"line {i:05d} " + "0" * 490 for i in range(1, 2501)]

    def page(**kwargs) -> dict:
        return logs.get_log_events(logGroupName=GROUP, logStreamName=stream, **kwargs)

    # Forward from the head, 1000 at a time, until the token comes back unchanged.
    seen, token, calls = [], None, 0
    while True:
        response = page(startFromHead=True, limit=1000, **({"nextToken": token} if token else {}))
        calls += 1
        seen += [e["message"] for e in response["events"]]
        if response["nextForwardToken"] == token:
            assert response["events"] == []
            break
        token = response["nextForwardToken"]
    assert seen == expected and calls == 4

    # Without a limit a page holds at most 1 MB of events.
    first = page(startFromHead=True)["events"]
    assert 1000 < len(first) < 2500
    assert sum(len(e["message"]) + 26 for e in first) <= 1 << 20

    # Without startFromHead: the tail, then backward tokens to the head.
    tail = page(limit=1000)
    assert [e["message"] for e in tail["events"]] == expected[1500:]
    assert page(nextToken=tail["nextForwardToken"])["events"] == []  # nothing after the tail yet
    older, token = [], tail["nextBackwardToken"]
    while True:
        response = page(nextToken=token, limit=1000)
        if response["nextBackwardToken"] == token:
            assert response["events"] == []
            break
        older = [e["message"] for e in response["events"]] + older
        token = response["nextBackwardToken"]
    assert older == expected[:1500]

    # A time window after the attempt's start holds none of its events.
    assert page(startFromHead=True, startTime=first[0]["timestamp"] + 1)["events"] == []
    assert len(page(startFromHead=True, limit=5, endTime=first[0]["timestamp"] + 1)["events"]) == 5


def test_following_a_running_job_like_airflow(batch, logs):
    # Airflow's AwsTaskLogFetcher: get_log_events from the head with the last nextForwardToken
    # until the token stops changing, again every few seconds, until the job has ended.
    definition = define(
        batch, "for i in 1 2 3 4; do echo tick $i; sleep 0.4; done; printf 'half'; sleep 0.6; echo ' whole'"
    )
    job_id = batch.submit_job(jobName="follow", jobQueue="default", jobDefinition=definition)["jobId"]
    detail = wait_for(batch, job_id, statuses=("RUNNING", "SUCCEEDED", "FAILED"))
    stream = detail["container"]["logStreamName"]
    messages, token, polls_with_news, done = [], None, 0, False
    deadline = time.monotonic() + 60
    while not done and time.monotonic() < deadline:
        done = batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"] in ("SUCCEEDED", "FAILED")
        while True:
            # The arguments AwsLogsHook.get_log_events (apache-airflow-providers-amazon 9.x) sends.
            arguments = {"logGroupName": GROUP, "logStreamName": stream, "startTime": 0, "startFromHead": True}
            response = logs.get_log_events(**arguments, **({"nextToken": token} if token else {}))
            if response["events"]:
                polls_with_news += 1
            messages += [e["message"] for e in response["events"]]
            if response["nextForwardToken"] == token:
                break
            token = response["nextForwardToken"]
        time.sleep(0.2)
    assert done
    assert messages == ["tick 1", "tick 2", "tick 3", "tick 4", "half whole"]  # never half a line
    assert polls_with_news >= 2  # it was read while it ran, not only at the end


def test_filter_log_events_across_streams(batch, logs):
    script = 'echo "INFO start $N"; echo "ERROR disk full on $N"; echo "WARN slow disk"; echo done'
    definition = define(batch, script)
    streams = []
    for n in ("a", "b"):
        job = run_job(batch, definition, containerOverrides={"environment": [{"name": "N", "value": n}]})
        streams.append(job["container"]["logStreamName"])

    def messages(**kwargs) -> list[str]:
        response = logs.filter_log_events(logGroupName=GROUP, logStreamNames=streams, **kwargs)
        assert {s["logStreamName"] for s in response["searchedLogStreams"]} == set(streams)
        return sorted(e["message"] for e in response["events"])

    assert messages(filterPattern="ERROR") == ["ERROR disk full on a", "ERROR disk full on b"]
    assert messages(filterPattern='"full on b"') == ["ERROR disk full on b"]
    assert messages(filterPattern="?INFO ?WARN") == ["INFO start a", "INFO start b", "WARN slow disk", "WARN slow disk"]
    assert messages(filterPattern="disk -ERROR") == ["WARN slow disk", "WARN slow disk"]
    assert len(messages()) == 8
    by_prefix = logs.filter_log_events(logGroupName=GROUP, logStreamNamePrefix=f"{definition}/", filterPattern="done")
    assert [(e["logStreamName"], e["message"]) for e in by_prefix["events"]] == sorted(
        [(s, "done") for s in streams], key=lambda pair: streams.index(pair[0])
    )

    # Paging one event at a time reaches every event exactly once.
    collected, token = [], None
    while True:
        response = logs.filter_log_events(
            logGroupName=GROUP, logStreamNames=streams, limit=1, **({"nextToken": token} if token else {})
        )
        collected += [(e["logStreamName"], e["eventId"], e["message"]) for e in response["events"]]
        token = response.get("nextToken")
        if not token:
            break
    assert len(collected) == 8 and len({event_id for _, event_id, _ in collected}) == 8
    assert sorted(m for _, _, m in collected) == messages()

    status, code, message = error_of(logs.filter_log_events, logGroupName=GROUP, filterPattern='{ $.level = "x" }')
    assert (status, code) == (400, "InvalidParameterException") and "JSON" in message
    status, code, _ = error_of(
        logs.filter_log_events, logGroupName=GROUP, logStreamNames=streams, logStreamNamePrefix=definition
    )
    assert (status, code) == (400, "InvalidParameterException")


def test_describe_log_streams(batch, logs):
    definition = define(batch, "echo hello")
    jobs = [run_job(batch, definition) for _ in range(3)]
    names = sorted(job["container"]["logStreamName"] for job in jobs)
    listed = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=f"{definition}/")["logStreams"]
    assert [s["logStreamName"] for s in listed] == names
    for record in listed:
        assert record["arn"].endswith(f":log-group:{GROUP}:log-stream:{record['logStreamName']}")
        assert record["firstEventTimestamp"] == record["lastEventTimestamp"] >= record["creationTime"]
    backwards = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=f"{definition}/", descending=True)
    assert [s["logStreamName"] for s in backwards["logStreams"]] == names[::-1]
    paged, token = [], None
    while True:
        response = logs.describe_log_streams(
            logGroupName=GROUP, logStreamNamePrefix=definition, limit=1, **({"nextToken": token} if token else {})
        )
        paged += [s["logStreamName"] for s in response["logStreams"]]
        token = response.get("nextToken")
        if not token:
            break
    assert paged == names
    newest = logs.describe_log_streams(logGroupName=GROUP, orderBy="LastEventTime", descending=True, limit=50)
    times = [s.get("lastEventTimestamp", 0) for s in newest["logStreams"]]
    assert times == sorted(times, reverse=True)
    status, code, message = error_of(
        logs.describe_log_streams, logGroupName=GROUP, orderBy="LastEventTime", logStreamNamePrefix=definition
    )
    assert (status, code) == (400, "InvalidParameterException") and "logStreamNamePrefix" in message


def test_a_definitions_awslogs_group_and_prefix_are_honoured(batch, logs):
    group = f"/genobatch/test-{uuid.uuid4().hex[:6]}"
    options = {"awslogs-group": group, "awslogs-stream-prefix": "pipeline"}
    definition = define(batch, "echo custom", logConfiguration={"logDriver": "awslogs", "options": options})
    stream = run_job(batch, definition)["container"]["logStreamName"]
    assert re.fullmatch(r"pipeline/default/[0-9a-f]{32}", stream)
    assert all_events(logs, stream, group=group) == ["custom"]
    assert [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]] == [stream]
    # The same stream is not in the default group.
    assert error_of(all_events, logs=logs, stream=stream)[1] == "ResourceNotFoundException"
    # Another log driver sends nothing to CloudWatch: there is no stream to name.
    quiet = define(batch, "echo x", logConfiguration={"logDriver": "json-file"})
    assert "logStreamName" not in run_job(batch, quiet)["container"]


def test_errors_in_aws_shape(batch, logs, genobatch_server):
    definition = define(batch, "echo x")
    stream = run_job(batch, definition)["container"]["logStreamName"]
    missing = f"{definition}/default/{uuid.uuid4().hex}"
    assert error_of(logs.get_log_events, logGroupName=GROUP, logStreamName=missing) == (
        400,
        "ResourceNotFoundException",
        "The specified log stream does not exist.",
    )
    assert error_of(logs.get_log_events, logGroupName="/no/such/group", logStreamName=stream) == (
        400,
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    )
    assert error_of(logs.describe_log_streams, logGroupName="/no/such/group")[1] == "ResourceNotFoundException"
    status, code, message = error_of(logs.get_log_events, logGroupName=GROUP, logStreamName=stream, nextToken="f/12")
    assert (status, code, message) == (400, "InvalidParameterException", "The specified nextToken is invalid.")
    status, code, _ = error_of(logs.get_log_events, logGroupName=GROUP, logGroupIdentifier=GROUP, logStreamName=stream)
    assert (status, code) == (400, "InvalidParameterException")
    status, code, message = error_of(logs.create_log_group, logGroupName="/x")
    assert (status, code) == (400, "InvalidOperationException") and "CreateLogGroup is not supported" in message

    # What botocore's own validation would stop is refused by the server too, naming the field.
    raw = logs_client(genobatch_server, config=Config(parameter_validation=False, retries={"max_attempts": 1}))
    status, code, message = error_of(raw.get_log_events, logGroupName=GROUP, logStreamName=stream, limit=0)
    assert (status, code) == (400, "InvalidParameterException") and "limit" in message


def _signed(server, url: str, body: bytes, headers: dict, service: str, secret: str | None = None):
    request = AWSRequest("POST", url, data=body, headers=headers)
    SigV4Auth(Credentials(server.access_key, secret or server.secret_key), service, server.region).add_auth(request)
    prepared = urllib.request.Request(url, data=body, headers=dict(request.headers.items()), method="POST")
    try:
        with urllib.request.urlopen(prepared, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_signatures_are_checked_and_scoped_to_the_logs_service(genobatch_server, logs):
    server = genobatch_server
    bad = logs_client(server, aws_secret_access_key="wrong-secret")
    assert error_of(bad.describe_log_streams, logGroupName=GROUP)[:2] == (400, "InvalidSignatureException")
    stranger = logs_client(server, aws_access_key_id="AKIDUNKNOWN0000000000")
    assert error_of(stranger.describe_log_streams, logGroupName=GROUP)[:2] == (400, "UnrecognizedClientException")
    unsigned = logs_client(server, config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}))
    status, code, _ = error_of(unsigned.describe_log_streams, logGroupName=GROUP)
    assert (status, code) == (400, "MissingAuthenticationTokenException")

    body = json.dumps({"logGroupName": GROUP}).encode()
    headers = {"X-Amz-Target": "Logs_20140328.DescribeLogStreams", "Content-Type": "application/x-amz-json-1.1"}
    assert _signed(server, server.endpoint + "/", body, headers, "logs")[0] == 200
    # A signature for Batch does not open the logs route, nor one for logs the Batch routes.
    status, answer = _signed(server, server.endpoint + "/", body, headers, "batch")
    assert (status, answer["__type"]) == (400, "InvalidSignatureException") and "'logs'" in answer["message"]
    status, _ = _signed(server, server.endpoint + "/v1/describejobqueues", b"{}", {}, "logs")
    assert status == 403
    assert _signed(server, server.endpoint + "/v1/describejobqueues", b"{}", {}, "batch")[0] == 200


def _exports(server) -> dict[str, str]:
    """What ``eval "$(genobatch credentials --export)"`` would set."""
    result = subprocess.run(
        [sys.executable, "-m", "genobatch", "--data-dir", str(server.data_dir), "credentials", "--export"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    pairs = [shlex.split(line.removeprefix("export "))[0] for line in result.stdout.splitlines() if line]
    return dict(pair.split("=", 1) for pair in pairs)


def test_aws_cli_reads_a_job_log_through_the_exported_environment(batch, genobatch_server):
    exports = _exports(genobatch_server)
    # botocore reads AWS_ENDPOINT_URL_<service id>, and the service id of logs is "CloudWatch Logs".
    assert exports["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"] == genobatch_server.endpoint
    definition = define(batch, "echo from the cli; echo second line")
    stream = run_job(batch, definition)["container"]["logStreamName"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(exports)
    executable = shutil.which("aws")
    command = [executable] if executable else [sys.executable, "-m", "awscli"]
    result = subprocess.run(
        [*command, "logs", "get-log-events", "--log-group-name", GROUP, "--log-stream-name", stream]
        + ["--start-from-head", "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert [e["message"] for e in json.loads(result.stdout)["events"]] == ["from the cli", "second line"]


def test_boto3_finds_the_endpoint_in_the_environment(batch, genobatch_server, monkeypatch):
    stream = run_job(batch, define(batch, "echo via env"))["container"]["logStreamName"]
    for name, value in _exports(genobatch_server).items():
        monkeypatch.setenv(name, value)
    # No endpoint_url, no keys: all from the exported environment. A new session, because the default
    # one may hold credentials another test in this process already resolved and cached.
    client = boto3.session.Session().client("logs")
    assert client.meta.endpoint_url == genobatch_server.endpoint
    assert all_events(client, stream) == ["via env"]

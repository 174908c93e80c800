"""The service-model layer: routing, request validation, output checks, error responses.

The routing and error tests go through a real boto3 client whose HTTP send is replaced by the
functions under test, so they prove the server understands exactly what botocore serializes
(percent-encoded ARNs, repeated ``tagKeys``) and that botocore parses exactly what it answers.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import boto3
import botocore.parsers
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSRequest, AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.model import Shape
from botocore.validate import ParamValidator
from shapes import assert_matches_output_shape

from genobatch.api.app import HANDLERS
from genobatch.api.errors import (
    ApiError,
    ClientException,
    ServerException,
    UnknownOperationException,
    error_response,
)
from genobatch.api.model import (
    OPERATIONS,
    ROUTES,
    check_output,
    match_route,
    operation_model,
    parse_request,
    service_model,
)

ARN = "arn:aws:batch:us-east-1:123456789012:job-queue/my queue"
VALID_SUBMIT = {
    "jobName": "align-sample-1",
    "jobQueue": "genomics",
    "jobDefinition": "bwa:3",
    "arrayProperties": {"size": 10},
    "dependsOn": [{"jobId": "0b5c3c6e", "type": "N_TO_N"}],
    "parameters": {"ref": "hg38"},
    "containerOverrides": {
        "command": ["bwa", "mem", "Ref::ref"],
        "environment": [{"name": "THREADS", "value": "8"}],
        "resourceRequirements": [{"type": "VCPU", "value": "8"}, {"type": "MEMORY", "value": "16384"}],
    },
    "retryStrategy": {"attempts": 3, "evaluateOnExit": [{"onExitCode": "137", "action": "RETRY"}]},
    "timeout": {"attemptDurationSeconds": 3600},
    "tags": {"project": "1000g"},
    "propagateTags": True,
}


def submit(**changes: Any) -> bytes:
    """A SubmitJob body: the valid one with ``changes`` applied (``None`` deletes a key)."""
    body = copy.deepcopy(VALID_SUBMIT)
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return json.dumps(body).encode()


def member(operation: str, *path: str) -> Shape:
    """The shape of an input member of ``operation``, e.g. ``member("SubmitJob", "timeout", "attemptDurationSeconds")``.

    Facts the model owns (bounds, enums) are read from the installed botocore's model rather than
    written into the tests: they change between botocore releases (jobExecutionTimeoutMinutes' max
    went from 360 to 7200), and genobatch enforces whatever the installed model says.
    """
    shape = operation_model(operation).input_shape
    for name in path:
        shape = shape.members[name]
    return shape


def rejection(operation: str, body: bytes, **kwargs: Any) -> str:
    """The message of the ClientException ``parse_request`` must raise."""
    with pytest.raises(ClientException) as info:
        parse_request(operation, body, **kwargs)
    assert info.value.status == 400 and info.value.code == "ClientException"
    return info.value.message


# ---------------------------------------------------------------------------------------------
# Routing
# ---------------------------------------------------------------------------------------------


def test_every_operation_has_a_route() -> None:
    # Every operation genobatch handles is in the installed model (a botocore without one is below
    # the supported range); the model has more, which app.py answers "not supported"
    # (tests/e2e/test_unsupported_operations.py), and a newer botocore adds some.
    assert set(HANDLERS) < set(OPERATIONS)
    assert sorted(ROUTES.values()) == sorted(OPERATIONS)
    for (method, template), name in ROUTES.items():
        path = template.replace("{resourceArn}", quote(ARN, safe=""))
        found = match_route(method, path)
        assert found is not None, (method, path)
        assert found[0] == name
        assert found[1] == ({"resourceArn": ARN} if "{" in template else {})


def test_plain_operations_are_post_to_lowercased_name() -> None:
    for name in OPERATIONS:
        http = operation_model(name).http
        if "{" not in http["requestUri"]:
            assert (http["method"], http["requestUri"]) == ("POST", f"/v1/{name.lower()}")
            assert match_route("POST", f"/v1/{name.lower()}".encode()) == (name, {})


def test_tag_routes_decode_the_arn() -> None:
    raw = "/v1/tags/" + quote(ARN, safe="")
    assert "%2F" in raw  # the ARN's slash must not split the path
    assert match_route("GET", raw) == ("ListTagsForResource", {"resourceArn": ARN})
    assert match_route("POST", raw.encode()) == ("TagResource", {"resourceArn": ARN})
    assert match_route("delete", raw + "?tagKeys=a") == ("UntagResource", {"resourceArn": ARN})


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/nosuchoperation"),
        ("GET", "/v1/submitjob"),  # known path, wrong method
        ("PUT", "/v1/tags/arn"),
        ("GET", "/v1/tags/"),  # empty label
        ("GET", "/v1/tags/a/b"),  # an unencoded slash is two segments
        ("POST", "/v1/submitjob/"),
        ("POST", "/"),
    ],
)
def test_unknown_routes(method: str, path: str) -> None:
    assert match_route(method, path) is None


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


def test_valid_submit_job_passes_unchanged() -> None:
    assert parse_request("SubmitJob", submit()) == VALID_SUBMIT


def test_null_structure_members_mean_absent() -> None:
    body = {**VALID_SUBMIT, "timeout": None, "retryStrategy": {"attempts": 2, "evaluateOnExit": None}}
    params = parse_request("SubmitJob", json.dumps(body).encode())
    assert "timeout" not in params and params["retryStrategy"] == {"attempts": 2}
    # In a list a null cannot mean "absent": it is reported.
    message = rejection("SubmitJob", submit(containerOverrides={"command": [None]}))
    assert "containerOverrides.command[0]" in message


def test_empty_body_is_an_empty_input() -> None:
    assert parse_request("ListJobs", b"") == {}
    assert parse_request("DescribeJobQueues", b"{}") == {}


def test_missing_required_field_is_named() -> None:
    message = rejection("SubmitJob", submit(jobQueue=None))
    assert message.startswith("1 validation error detected: ")
    assert 'Missing required parameter in input: "jobQueue"' in message


def test_wrong_type_is_named() -> None:
    message = rejection("SubmitJob", submit(arrayProperties={"size": "x"}))
    assert "arrayProperties.size" in message and "<class 'str'>" in message


def test_bool_is_not_a_number() -> None:
    # ParamValidator lets True through as an int (bool subclasses int); AWS would not.
    shape = operation_model("SubmitJob").input_shape
    assert not ParamValidator().validate({**VALID_SUBMIT, "arrayProperties": {"size": True}}, shape).has_errors()
    message = rejection("SubmitJob", submit(arrayProperties={"size": True}))
    assert "arrayProperties.size" in message and "<class 'bool'>" in message


def test_unknown_field_is_named() -> None:
    message = rejection("SubmitJob", submit(jobPriority=5))
    assert 'Unknown parameter in input: "jobPriority"' in message
    nested = rejection("SubmitJob", submit(containerOverrides={"cmd": ["x"]}))
    assert 'Unknown parameter in containerOverrides: "cmd"' in nested


def test_bad_enum_is_named() -> None:
    message = rejection("SubmitJob", submit(dependsOn=[{"jobId": "a", "type": "FOO"}]))
    allowed = member("SubmitJob", "dependsOn").member.members["type"].enum
    assert "N_TO_N" in allowed and "SEQUENTIAL" in allowed
    assert "'dependsOn[0].type'" in message and f"[{', '.join(allowed)}]" in message
    # Enum values are case-sensitive, as in the model.
    lower = rejection(
        "SubmitJob", submit(containerOverrides={"resourceRequirements": [{"type": "vcpu", "value": "1"}]})
    )
    assert "containerOverrides.resourceRequirements[0].type" in lower


def test_enum_inside_a_list_of_strings() -> None:
    body = {"jobDefinitionName": "d", "type": "container", "platformCapabilities": ["EC2", "GPU"]}
    message = rejection("RegisterJobDefinition", json.dumps(body).encode())
    assert "'platformCapabilities[1]'" in message


def test_string_over_max_length_is_named() -> None:
    # Batch declares max on tag keys (128 today) and values (256), and on client tokens (64).
    tags = member("SubmitJob", "tags")
    key_max, value_max = tags.key.metadata["max"], tags.value.metadata["max"]
    at_max = {"k" * key_max: "v" * value_max}
    assert parse_request("SubmitJob", submit(tags=at_max))["tags"] == at_max
    message = rejection("SubmitJob", submit(tags={"k" * (key_max + 1): "v", "ok": "v" * (value_max + 1)}))
    assert "tags (key: " in message and f"less than or equal to {key_max}" in message
    assert "'tags.ok'" in message and f"less than or equal to {value_max}" in message
    assert message.startswith("2 validation errors detected: ")
    token_max = member("SubmitServiceJob", "clientToken").metadata["max"]
    token = {"jobName": "j", "jobQueue": "q", "serviceJobType": "SAGEMAKER_TRAINING"}
    token |= {"serviceRequestPayload": "{}", "clientToken": "c" * (token_max + 1)}
    assert "'clientToken'" in rejection("SubmitServiceJob", json.dumps(token).encode())


def test_map_size_bounds() -> None:
    # ParamValidator checks no bounds on maps; the model says 1..50 tags. The min is deliberately
    # not enforced: real clients (Snakemake's AWS Batch plugin) send "tags": {} and AWS accepts it.
    assert parse_request("SubmitJob", submit(tags={}))["tags"] == {}
    most = member("SubmitJob", "tags").metadata["max"]
    assert len(parse_request("SubmitJob", submit(tags={f"k{i}": "v" for i in range(most)}))["tags"]) == most
    too_many = submit(tags={f"k{i}": "v" for i in range(most + 1)})
    assert f"less than or equal to {most}" in rejection("SubmitJob", too_many)


def test_number_bounds() -> None:
    # UpdatePolicy.jobExecutionTimeoutMinutes is a Long with min 1 and a max (360 in botocore 1.43,
    # 7200 in 1.44): ParamValidator checks the min, this module the max.
    def update(minutes: int) -> bytes:
        return json.dumps(
            {"computeEnvironment": "ce", "updatePolicy": {"jobExecutionTimeoutMinutes": minutes}}
        ).encode()

    bounds = member("UpdateComputeEnvironment", "updatePolicy", "jobExecutionTimeoutMinutes").metadata
    low, high = bounds["min"], bounds["max"]
    for minutes in (low, high):
        params = parse_request("UpdateComputeEnvironment", update(minutes))
        assert params["updatePolicy"] == {"jobExecutionTimeoutMinutes": minutes}
    assert "updatePolicy.jobExecutionTimeoutMinutes" in rejection("UpdateComputeEnvironment", update(low - 1))
    assert f"less than or equal to {high}" in rejection("UpdateComputeEnvironment", update(high + 1))
    # Integer members are 32-bit.
    assert "'schedulingPriorityOverride'" in rejection("SubmitJob", submit(schedulingPriorityOverride=2**31))


def test_every_problem_is_reported_once() -> None:
    message = rejection(
        "SubmitJob",
        submit(jobQueue=None, bogus=1, arrayProperties={"size": "x"}, tags={"k" * 200: "v"}),
    )
    assert message.startswith("4 validation errors detected: ")
    for field in ('"jobQueue"', '"bogus"', "arrayProperties.size", "tags (key: "):
        assert message.count(field) == 1, (field, message)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{", "not valid JSON"),
        (b'{"jobName": "a",}', "not valid JSON"),
        (b'{"jobName": NaN}', "NaN"),
        (b"[]", "must be a JSON object, not an array"),
        (b"null", "must be a JSON object, not null"),
        (b"\xff\xfe", "not valid UTF-8"),
        (b'{"parameters": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    ],
)
def test_bad_body(body: bytes, expected: str) -> None:
    assert expected in rejection("SubmitJob", body)


def test_untag_binds_uri_and_repeated_query_keys() -> None:
    params = parse_request("UntagResource", b"", {"resourceArn": ARN}, parse_qs("tagKeys=a&tagKeys=b%20c"))
    assert params == {"resourceArn": ARN, "tagKeys": ["a", "b c"]}
    assert parse_request("UntagResource", b"", {"resourceArn": ARN}, {"tagKeys": "solo"})["tagKeys"] == ["solo"]
    assert '"tagKeys"' in rejection("UntagResource", b"", path_params={"resourceArn": ARN}, query={})
    most = member("UntagResource", "tagKeys").metadata["max"]
    too_many = {"tagKeys": [str(i) for i in range(most + 1)]}
    assert "'tagKeys'" in rejection("UntagResource", b"", path_params={"resourceArn": ARN}, query=too_many)


def test_uri_member_wins_over_body() -> None:
    body = json.dumps({"resourceArn": "arn:forged", "tags": {"a": "b"}}).encode()
    assert parse_request("TagResource", body, {"resourceArn": ARN})["resourceArn"] == ARN


def test_which_members_are_bound_outside_the_body() -> None:
    bound = {
        (name, member_name, shape.serialization["location"])
        for name in OPERATIONS
        for member_name, shape in operation_model(name).input_shape.members.items()
        if shape.serialization.get("location")
    }
    # The tag operations' bindings, which the handlers rely on; parse_request binds the path and the
    # query string only, so a model that put a member in a header would need work there first.
    assert bound >= {
        ("ListTagsForResource", "resourceArn", "uri"),
        ("TagResource", "resourceArn", "uri"),
        ("UntagResource", "resourceArn", "uri"),
        ("UntagResource", "tagKeys", "querystring"),
    }
    assert {location for _, _, location in bound} <= {"uri", "querystring"}


# ---------------------------------------------------------------------------------------------
# Output shapes
# ---------------------------------------------------------------------------------------------

JOB = {
    "jobArn": "arn:aws:batch:us-east-1:123456789012:job/0b5c3c6e",
    "jobName": "align-sample-1",
    "jobId": "0b5c3c6e",
    "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/genomics",
    "status": "RUNNABLE",
    "attempts": [{"container": {"exitCode": 137, "reason": "OutOfMemoryError"}, "startedAt": 1, "stoppedAt": 2}],
    "createdAt": 1700000000000,
    "retryStrategy": {"attempts": 3},
    # no startedAt: the model says required, AWS omits it until the job starts
    "dependsOn": [{"jobId": "a", "type": "SEQUENTIAL"}],
    "jobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/bwa:3",
    "parameters": {"ref": "hg38"},
    "container": {"image": "bwa:0.7", "vcpus": 8, "command": ["bwa"], "environment": []},
    "arrayProperties": {"statusSummary": {"RUNNABLE": 10}, "size": 10},
    "timeout": {"attemptDurationSeconds": 3600},
    "tags": {"project": "1000g"},
    "propagateTags": False,
    "platformCapabilities": ["EC2"],
}


def describe(**changes: Any) -> dict[str, Any]:
    """A DescribeJobs response holding JOB with ``changes`` applied."""
    return {"jobs": [{**copy.deepcopy(JOB), **changes}]}


def test_valid_outputs_pass() -> None:
    assert check_output("SubmitJob", {"jobArn": JOB["jobArn"], "jobName": "n", "jobId": "i"}) == []
    assert check_output("DescribeJobs", describe()) == []
    assert check_output("DescribeJobs", {"jobs": []}) == []
    assert check_output("ListTagsForResource", {"tags": {}}) == []  # an untagged resource
    assert_matches_output_shape("DescribeJobs", {**describe(), "ResponseMetadata": {"HTTPStatusCode": 200}})


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"createdAt": "1700000000000"}, "jobs[0].createdAt"),
        ({"createdAt": 1.5}, "jobs[0].createdAt"),
        ({"createdAt": True}, "jobs[0].createdAt"),
        ({"jobName": 7}, "jobs[0].jobName"),
        ({"propagateTags": "false"}, "jobs[0].propagateTags"),
        ({"status": "QUEUED"}, "jobs[0].status"),
        ({"dependsOn": [{"jobId": "a", "type": "FOO"}]}, "jobs[0].dependsOn[0].type"),
        ({"color": "red"}, '"color"'),
        ({"statusReason": None}, "jobs[0].statusReason"),
        ({"container": {"vcpus": "8"}}, "jobs[0].container.vcpus"),
        ({"container": []}, "jobs[0].container"),
        ({"attempts": {}}, "jobs[0].attempts"),
        ({"arrayProperties": {"statusSummary": {"RUNNABLE": "10"}}}, "jobs[0].arrayProperties.statusSummary.RUNNABLE"),
        ({"tags": {"k" * 129: "v"}}, "jobs[0].tags (key: "),
        ({"platformCapabilities": ["GPU"]}, "jobs[0].platformCapabilities[0]"),
    ],
)
def test_output_problems_are_reported(changes: dict[str, Any], where: str) -> None:
    problems = check_output("DescribeJobs", describe(**changes))
    assert len(problems) == 1 and where in problems[0], problems
    with pytest.raises(AssertionError, match="DescribeJobs response does not match"):
        assert_matches_output_shape("DescribeJobs", describe(**changes))


def test_output_required_members() -> None:
    job = copy.deepcopy(JOB)
    del job["jobId"]
    assert check_output("DescribeJobs", {"jobs": [job]}) == ['Missing required parameter in jobs[0]: "jobId"']
    assert check_output("SubmitJob", {"jobName": "n"}) == ['Missing required parameter in response: "jobId"']
    assert check_output("DescribeJobs", {"jobz": []})[0].startswith('Unknown parameter in response: "jobz"')


# ---------------------------------------------------------------------------------------------
# Error responses, parsed by botocore
# ---------------------------------------------------------------------------------------------


def parse_error(err: ApiError, operation: str = "SubmitJob") -> dict[str, Any]:
    """What botocore's rest-json parser makes of ``error_response(err)``."""
    response = error_response(err, request_id="req-1")
    parser = botocore.parsers.create_parser("rest-json")
    return parser.parse(
        {"status_code": response.status_code, "headers": dict(response.headers), "body": response.body},
        operation_model(operation).output_shape,
    )


@pytest.mark.parametrize(
    ("err", "status", "code"),
    [
        (ClientException("Job queue q does not exist"), 400, "ClientException"),
        (ServerException("database is locked"), 500, "ServerException"),
        (UnknownOperationException("Unknown operation: GET /v1/nope"), 404, "UnknownOperationException"),
        (ClientException("throttled", status=429, code="TooManyRequestsException"), 429, "TooManyRequestsException"),
    ],
)
def test_error_response_parses_into_code_and_message(err: ApiError, status: int, code: str) -> None:
    response = error_response(err)
    assert response.status_code == status
    assert response.headers["x-amzn-ErrorType"] == code
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.body) == {"__type": code, "message": err.message}
    parsed = parse_error(err)
    assert parsed["Error"] == {"Code": code, "Message": err.message}
    assert parsed["ResponseMetadata"]["RequestId"] == "req-1"
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == status


def test_error_classes() -> None:
    assert (ClientException.status, ClientException.code) == (400, "ClientException")
    assert (ServerException.status, ServerException.code) == (500, "ServerException")
    # The two errors the model declares are exactly these two.
    assert {s.name for s in operation_model("SubmitJob").error_shapes} == {"ClientException", "ServerException"}
    assert error_response(ServerException("x")).headers["x-amzn-RequestId"]


class _Raw:
    """The raw-response object botocore's AWSResponse reads its body from."""

    def __init__(self, content: bytes) -> None:
        self._content = content

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._content


def _serve(request: AWSPreparedRequest, handle: Callable[[str, dict[str, Any]], dict[str, Any]]) -> AWSResponse:
    """Answer one botocore request in-process, the way the server does: route, parse, handle."""
    url = urlsplit(request.url)
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode()
    try:
        found = match_route(request.method, url.path)
        if found is None:
            raise UnknownOperationException(f"Unknown operation: {request.method} {url.path}")
        operation, labels = found
        params = parse_request(operation, body, labels, parse_qs(url.query, keep_blank_values=True))
        status, headers, content = 200, {"x-amzn-RequestId": "req-2"}, json.dumps(handle(operation, params)).encode()
    except ApiError as err:
        response = error_response(err, request_id="req-2")
        status, headers, content = response.status_code, dict(response.headers), response.body
    return AWSResponse(request.url, status, headers, _Raw(content))


@pytest.fixture
def batch() -> Iterator[tuple[Any, list[tuple[str, dict[str, Any]]]]]:
    """A boto3 Batch client wired to :func:`_serve`, and the (operation, params) it received."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def handle(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        seen.append((operation, params))
        if operation == "SubmitJob":
            return {"jobArn": JOB["jobArn"], "jobName": params["jobName"], "jobId": "0b5c3c6e"}
        if operation == "ListTagsForResource":
            return {"tags": {"project": "1000g"}}
        return {}

    client = boto3.client(
        "batch",
        region_name="us-east-1",
        endpoint_url="http://genobatch.test",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        # Client-side validation off, so bad input reaches the server's validation.
        config=Config(parameter_validation=False, retries={"max_attempts": 1}),
    )
    client.meta.events.register("before-send.batch.*", lambda request, **_: _serve(request, handle))
    yield client, seen


def test_boto3_round_trip(batch: tuple[Any, list[tuple[str, dict[str, Any]]]]) -> None:
    client, seen = batch
    out = client.submit_job(**VALID_SUBMIT)
    assert_matches_output_shape("SubmitJob", out)
    client.tag_resource(resourceArn=ARN, tags={"a": "b"})
    client.untag_resource(resourceArn=ARN, tagKeys=["a", "b c"])
    assert client.list_tags_for_resource(resourceArn=ARN)["tags"] == {"project": "1000g"}
    assert seen == [
        ("SubmitJob", VALID_SUBMIT),
        ("TagResource", {"resourceArn": ARN, "tags": {"a": "b"}}),
        ("UntagResource", {"resourceArn": ARN, "tagKeys": ["a", "b c"]}),
        ("ListTagsForResource", {"resourceArn": ARN}),
    ]


def test_boto3_sees_client_exception(batch: tuple[Any, list[tuple[str, dict[str, Any]]]]) -> None:
    client, seen = batch
    with pytest.raises(client.exceptions.ClientException) as info:
        client.submit_job(jobName="j", jobDefinition="d", dependsOn=[{"jobId": "a", "type": "FOO"}])
    error = info.value.response["Error"]
    assert error["Code"] == "ClientException"
    assert '"jobQueue"' in error["Message"] and "dependsOn[0].type" in error["Message"]
    assert info.value.response["ResponseMetadata"]["RequestId"] == "req-2"
    assert seen == []  # rejected before any handler ran


def test_boto3_sees_unknown_operation(batch: tuple[Any, list[tuple[str, dict[str, Any]]]]) -> None:
    client, _ = batch

    def wrong_path(request: AWSRequest, **_: Any) -> None:
        request.url = request.url.replace("/v1/listjobs", "/v1/listjobz")

    # Before signing, so the in-process send handler (which answers first) sees the bad path.
    client.meta.events.register("before-sign.batch.ListJobs", wrong_path)
    with pytest.raises(ClientError) as info:
        client.list_jobs(jobQueue="q")
    assert info.value.response["Error"]["Code"] == "UnknownOperationException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_service_model_is_cached() -> None:
    assert service_model() is service_model()
    assert service_model().protocol == "rest-json"

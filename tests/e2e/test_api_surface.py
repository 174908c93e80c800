"""The API surface: resources, validation (bad input writes nothing), authentication, tags."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError


def client_error(call, **kwargs) -> dict:
    with pytest.raises(ClientError) as error:
        call(**kwargs)
    return error.value.response


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_compute_environment_and_queue_lifecycle(batch):
    name = unique("ce")
    arn = batch.create_compute_environment(
        computeEnvironmentName=name,
        type="MANAGED",
        computeResources={"type": "EC2", "maxvCpus": 1, "minvCpus": 0, "subnets": [], "instanceTypes": ["c5.large"]},
    )["computeEnvironmentArn"]
    assert arn.endswith(f":compute-environment/{name}")
    queue = unique("q")
    batch.create_job_queue(
        jobQueueName=queue, priority=10, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": arn}]
    )
    described = batch.describe_job_queues(jobQueues=[queue])["jobQueues"][0]
    assert described["computeEnvironmentOrder"][0]["computeEnvironment"] == arn
    batch.update_job_queue(jobQueue=queue, priority=20)
    assert batch.describe_job_queues(jobQueues=[queue])["jobQueues"][0]["priority"] == 20
    batch.update_compute_environment(computeEnvironment=name, computeResources={"maxvCpus": 2})
    ce = batch.describe_compute_environments(computeEnvironments=[name])["computeEnvironments"][0]
    assert ce["computeResources"]["maxvCpus"] == 2 and ce["status"] == "VALID"

    error = client_error(batch.delete_compute_environment, computeEnvironment=name)
    assert "DISABLED" in error["Error"]["Message"]
    batch.update_compute_environment(computeEnvironment=name, state="DISABLED")
    error = client_error(batch.delete_compute_environment, computeEnvironment=name)
    assert queue in error["Error"]["Message"]  # still used by the queue
    error = client_error(batch.delete_job_queue, jobQueue=queue)
    assert "DISABLED" in error["Error"]["Message"]
    batch.update_job_queue(jobQueue=queue, state="DISABLED")
    batch.delete_job_queue(jobQueue=queue)
    batch.delete_compute_environment(computeEnvironment=name)
    assert batch.describe_compute_environments(computeEnvironments=[name])["computeEnvironments"] == []
    error = client_error(
        batch.create_job_queue,
        jobQueueName=unique("q"),
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "missing"}],
    )
    assert "missing" in error["Error"]["Message"]


def test_job_definition_revisions_deregister_and_describe(batch):
    name = unique("def")
    container = {"image": "busybox", "command": ["true"]}
    first = batch.register_job_definition(jobDefinitionName=name, type="container", containerProperties=container)
    second = batch.register_job_definition(jobDefinitionName=name, type="container", containerProperties=container)
    assert (first["revision"], second["revision"]) == (1, 2)
    batch.deregister_job_definition(jobDefinition=second["jobDefinitionArn"])
    active = batch.describe_job_definitions(jobDefinitionName=name, status="ACTIVE")["jobDefinitions"]
    assert [d["revision"] for d in active] == [1]
    by_ref = batch.describe_job_definitions(jobDefinitions=[f"{name}:2"])["jobDefinitions"]
    assert by_ref[0]["status"] == "INACTIVE"
    paged = batch.get_paginator("describe_job_definitions").paginate(
        jobDefinitionName=name, PaginationConfig={"PageSize": 1}
    )
    assert sum(len(page["jobDefinitions"]) for page in paged) == 2
    # A bare name resolves to the latest ACTIVE revision; an INACTIVE revision cannot be used.
    job = batch.submit_job(jobName="rev", jobQueue="default", jobDefinition=name)
    detail = batch.describe_jobs(jobs=[job["jobId"]])["jobs"][0]
    assert detail["jobDefinition"] == first["jobDefinitionArn"]
    error = client_error(batch.submit_job, jobName="rev", jobQueue="default", jobDefinition=f"{name}:2")
    assert "INACTIVE" in error["Error"]["Message"]


BAD_SUBMISSIONS = [
    ({"arrayProperties": {"size": 1}}, "arrayProperties.size"),
    ({"arrayProperties": {"size": 10001}}, "arrayProperties.size"),
    ({"timeout": {"attemptDurationSeconds": 30}}, "attemptDurationSeconds"),
    ({"retryStrategy": {"attempts": 11}}, "attempts"),
    (
        {
            "retryStrategy": {
                "attempts": 2,
                "evaluateOnExit": [{"action": "EXIT", "onExitCode": str(i)} for i in range(6)],
            }
        },
        "evaluateOnExit",
    ),
    ({"retryStrategy": {"attempts": 2, "evaluateOnExit": [{"action": "EXIT", "onExitCode": "1*2"}]}}, "onExitCode"),
    ({"dependsOn": [{"jobId": str(uuid.uuid4())} for _ in range(21)]}, "dependsOn"),
    ({"dependsOn": [{"jobId": "no-such-job"}]}, "no-such-job"),
    ({"dependsOn": [{"type": "SEQUENTIAL"}]}, "SEQUENTIAL"),
    ({"jobQueue": "no-such-queue"}, "no-such-queue"),
    ({"jobDefinition": "no-such-definition"}, "no-such-definition"),
    ({"jobName": "bad name!"}, "jobName"),
    ({"schedulingPriorityOverride": 10000}, "schedulingPriorityOverride"),
    ({"containerOverrides": {"environment": [{"name": "AWS_BATCH_X", "value": "1"}]}}, "AWS_BATCH"),
    ({"containerOverrides": {"resourceRequirements": [{"type": "VCPU", "value": "1.5"}]}}, "VCPU"),
    ({"shareIdentifier": "team-a"}, "shareIdentifier"),
]


@pytest.mark.parametrize(("override", "named"), BAD_SUBMISSIONS, ids=[b[1] for b in BAD_SUBMISSIONS])
def test_bad_submit_is_rejected_naming_the_field_and_writes_nothing(batch, override, named):
    definition = batch.register_job_definition(
        jobDefinitionName=unique("bad"), type="container", containerProperties={"image": "x", "command": ["true"]}
    )["jobDefinitionName"]
    request = {"jobName": "bad", "jobQueue": "default", "jobDefinition": definition, **override}
    before = {
        s: len(batch.list_jobs(jobQueue="default", jobStatus=s)["jobSummaryList"]) for s in ("PENDING", "RUNNABLE")
    }
    error = client_error(batch.submit_job, **request)
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "ClientException"
    assert named in error["Error"]["Message"]
    after = {
        s: len(batch.list_jobs(jobQueue="default", jobStatus=s)["jobSummaryList"]) for s in ("PENDING", "RUNNABLE")
    }
    assert after == before
    named_jobs = batch.list_jobs(jobQueue="default", filters=[{"name": "JOB_NAME", "values": ["bad"]}])
    assert named_jobs["jobSummaryList"] == []


def test_model_validation_names_the_field(batch):
    error = client_error(
        batch.submit_job, jobName="x", jobQueue="default", jobDefinition="x", dependsOn=[{"jobId": "a", "type": "FOO"}]
    )
    assert "dependsOn[0].type" in error["Error"]["Message"]


def test_n_to_n_requires_arrays_of_the_same_size(batch):
    definition = batch.register_job_definition(
        jobDefinitionName=unique("nn"), type="container", containerProperties={"image": "x", "command": ["true"]}
    )["jobDefinitionName"]
    small = batch.submit_job(jobName="s", jobQueue="default", jobDefinition=definition, arrayProperties={"size": 2})
    error = client_error(
        batch.submit_job,
        jobName="b",
        jobQueue="default",
        jobDefinition=definition,
        arrayProperties={"size": 3},
        dependsOn=[{"jobId": small["jobId"], "type": "N_TO_N"}],
    )
    assert "N_TO_N" in error["Error"]["Message"]


def test_tags_on_resources(batch):
    queue_arn = batch.describe_job_queues(jobQueues=["default"])["jobQueues"][0]["jobQueueArn"]
    batch.tag_resource(resourceArn=queue_arn, tags={"project": "wgs", "cost center": "42"})
    assert batch.list_tags_for_resource(resourceArn=queue_arn)["tags"] == {"project": "wgs", "cost center": "42"}
    batch.untag_resource(resourceArn=queue_arn, tagKeys=["cost center"])
    assert batch.list_tags_for_resource(resourceArn=queue_arn)["tags"] == {"project": "wgs"}
    error = client_error(batch.list_tags_for_resource, resourceArn=queue_arn + "-missing")
    assert error["Error"]["Code"] == "ClientException"


def test_bad_signatures_are_refused_and_change_nothing(genobatch_server):
    wrong_secret = genobatch_server.client(aws_secret_access_key="x" * 40)
    error = client_error(
        wrong_secret.create_job_queue,
        jobQueueName="sneaky",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "default"}],
    )
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Code"] == "InvalidSignatureException"
    unknown_key = genobatch_server.client(aws_access_key_id="AKIAUNKNOWNKEY000000")
    error = client_error(unknown_key.describe_job_queues)
    assert error["Error"]["Code"] == "UnrecognizedClientException"

    request = urllib.request.Request(genobatch_server.endpoint + "/v1/describejobqueues", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(request, timeout=5)
    assert unsigned.value.code == 403
    assert unsigned.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    queues = genobatch_server.client().describe_job_queues()["jobQueues"]
    assert "sneaky" not in [q["jobQueueName"] for q in queues]


def test_unknown_operation_and_bad_json(genobatch_server):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    def post(path: str, body: bytes) -> urllib.error.HTTPError:
        aws = AWSRequest(method="POST", url=genobatch_server.endpoint + path, data=body)
        SigV4Auth(Credentials(genobatch_server.access_key, genobatch_server.secret_key), "batch", "us-east-1").add_auth(
            aws
        )
        request = urllib.request.Request(aws.url, data=body, headers=dict(aws.headers.items()), method="POST")
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(request, timeout=5)
        return error.value

    bad_json = post("/v1/submitjob", b"{not json")
    assert bad_json.code == 400 and json.loads(bad_json.read())["__type"] == "ClientException"
    unknown = post("/v1/nosuchoperation", b"{}")
    assert unknown.code == 404

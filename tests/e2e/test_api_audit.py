"""The Batch API as the API Reference and User Guide document it (issue 7 §4), end to end with boto3.

Each test pins one documented constraint, default or response member that genobatch got wrong.
The harness's clients check every response against botocore's output shape.
"""

from __future__ import annotations

import time
import uuid

import pytest
from botocore.exceptions import ClientError
from harness import wait_for


def client_error(call, **kwargs) -> dict:
    with pytest.raises(ClientError) as error:
        call(**kwargs)
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error.value.response["Error"]["Code"] == "ClientException"
    return error.value.response["Error"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def define(batch, command: list[str], *, vcpus: int = 1, **extra) -> dict:
    return batch.register_job_definition(
        jobDefinitionName=unique("audit"),
        type="container",
        containerProperties={
            "image": "busybox",
            "command": command,
            "resourceRequirements": [{"type": "VCPU", "value": str(vcpus)}, {"type": "MEMORY", "value": "128"}],
        },
        **extra,
    )


def submit(batch, definition: str, name: str = "audit", **kwargs) -> str:
    return batch.submit_job(jobName=name, jobQueue="default", jobDefinition=definition, **kwargs)["jobId"]


BAD_NAMES = ["a/b", "${jndi:ldap://x}", "x" * 129, "n" * 1_000_000, "has space", "a:b"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=["slash", "jndi", "129-chars", "1MB", "space", "colon"])
def test_compute_environment_and_queue_names_are_validated(batch, name):
    before_ces = batch.describe_compute_environments()["computeEnvironments"]
    error = client_error(
        batch.create_compute_environment,
        computeEnvironmentName=name,
        type="MANAGED",
        computeResources={"type": "EC2", "maxvCpus": 1, "subnets": [], "instanceRole": "x", "securityGroupIds": []},
    )
    assert "computeEnvironmentName" in error["Message"] and len(error["Message"]) < 500
    assert batch.describe_compute_environments()["computeEnvironments"] == before_ces
    before_queues = batch.describe_job_queues()["jobQueues"]
    error = client_error(
        batch.create_job_queue,
        jobQueueName=name,
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "default"}],
    )
    assert "jobQueueName" in error["Message"] and len(error["Message"]) < 500
    assert batch.describe_job_queues()["jobQueues"] == before_queues


def test_longest_valid_names_are_accepted(batch):
    name = "N" * 120 + uuid.uuid4().hex[:8]  # 128 characters
    arn = batch.create_compute_environment(
        computeEnvironmentName=name, type="MANAGED", computeResources={"subnets": [], "type": "EC2", "maxvCpus": 1}
    )["computeEnvironmentArn"]
    assert arn.endswith(f":compute-environment/{name}")
    batch.create_job_queue(
        jobQueueName=name, priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": arn}]
    )
    batch.update_job_queue(jobQueue=name, state="DISABLED")
    batch.delete_job_queue(jobQueue=name)
    batch.update_compute_environment(computeEnvironment=name, state="DISABLED")
    batch.delete_compute_environment(computeEnvironment=name)


def test_definition_arn_without_revision_means_latest_active(batch):
    first = define(batch, ["true"])
    second = batch.register_job_definition(
        jobDefinitionName=first["jobDefinitionName"],
        type="container",
        containerProperties={"image": "x", "command": ["true"]},
    )
    batch.deregister_job_definition(jobDefinition=second["jobDefinitionArn"])
    bare_arn = first["jobDefinitionArn"].rsplit(":", 1)[0]
    job_id = submit(batch, bare_arn)
    assert batch.describe_jobs(jobs=[job_id])["jobs"][0]["jobDefinition"] == first["jobDefinitionArn"]
    batch.deregister_job_definition(jobDefinition=first["jobDefinitionArn"])
    error = client_error(batch.submit_job, jobName="x", jobQueue="default", jobDefinition=bare_arn)
    assert "ACTIVE" in error["Message"]


@pytest.mark.slow
def test_cancel_of_a_pending_job_takes_effect_when_its_dependency_completes(batch):
    first = submit(batch, define(batch, ["sleep", "3"])["jobDefinitionArn"], "first")
    waiting = submit(batch, define(batch, ["true"])["jobDefinitionArn"], "waiting", dependsOn=[{"jobId": first}])
    batch.cancel_job(jobId=waiting, reason="no longer needed")
    detail = batch.describe_jobs(jobs=[waiting])["jobs"][0]
    assert detail["status"] == "PENDING" and detail["isCancelled"]
    if "isCancelled" in batch.meta.service_model.shape_for("JobSummary").members:
        # ListJobs says so too where the model has the member (botocore 1.44 and newer).
        listed = batch.list_jobs(jobQueue="default", jobStatus="PENDING")["jobSummaryList"]
        summary = next(item for item in listed if item["jobId"] == waiting)
        assert summary["isCancelled"] is True and summary["isTerminated"] is False
    assert batch.describe_jobs(jobs=[first])["jobs"][0]["status"] != "SUCCEEDED"
    assert wait_for(batch, first)["status"] == "SUCCEEDED"
    detail = wait_for(batch, waiting)
    assert detail["status"] == "FAILED" and detail["statusReason"] == "no longer needed"
    assert detail["attempts"] == [] and "startedAt" not in detail


def test_more_vcpus_than_max_vcpus_is_compute_environment_max_resource(batch):
    job_id = submit(batch, define(batch, ["true"], vcpus=4096)["jobDefinitionArn"], "too-wide")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        detail = batch.describe_jobs(jobs=[job_id])["jobs"][0]
        if detail.get("statusReason"):
            break
        time.sleep(0.1)
    assert detail["status"] == "RUNNABLE"
    assert detail["statusReason"].startswith("MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE - ")
    batch.cancel_job(jobId=job_id, reason="cannot fit")
    assert wait_for(batch, job_id)["status"] == "FAILED"


def _time_limit(**change) -> list[dict]:
    action = {
        "reason": "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
        "state": "RUNNABLE",
        "maxTimeSeconds": 600,
        "action": "CANCEL",
    }
    return [{**action, **change}]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"action": "TERMINATE"}, "jobStateTimeLimitActions[0].action"),
        ({"reason": "MISCONFIGURATION:SERVICE_ROLE_PERMISSIONS"}, "jobStateTimeLimitActions[0].reason"),
        ({"reason": "anything"}, "jobStateTimeLimitActions[0].reason"),
        ({"state": "PENDING"}, "jobStateTimeLimitActions[0].state"),
    ],
    ids=["terminate", "unsupported-reason", "unknown-reason", "state"],
)
def test_time_limit_actions_that_cannot_act_are_refused(batch, change, named):
    name = unique("tl")
    error = client_error(
        batch.create_job_queue,
        jobQueueName=name,
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "default"}],
        jobStateTimeLimitActions=_time_limit(**change),
    )
    assert named in error["Message"]
    assert batch.describe_job_queues(jobQueues=[name])["jobQueues"] == []
    error = client_error(batch.update_job_queue, jobQueue="default", jobStateTimeLimitActions=_time_limit(**change))
    assert named in error["Message"]
    assert batch.describe_job_queues(jobQueues=["default"])["jobQueues"][0].get("jobStateTimeLimitActions", []) == []


@pytest.mark.parametrize(
    "reason",
    [
        "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
        "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
        "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
    ],
)
def test_every_documented_time_limit_reason_is_accepted(batch, reason):
    name = unique("tl")
    actions = _time_limit(reason=reason)
    batch.create_job_queue(
        jobQueueName=name,
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "default"}],
        jobStateTimeLimitActions=actions,
    )
    assert batch.describe_job_queues(jobQueues=[name])["jobQueues"][0]["jobStateTimeLimitActions"] == actions
    batch.update_job_queue(jobQueue=name, state="DISABLED")
    batch.delete_job_queue(jobQueue=name)


CONTAINER_OVERRIDE = {"command": ["true"]}
UNSUPPORTED_SUBMIT = [
    ("nodeOverrides", {"numNodes": 2}),
    ("eksPropertiesOverride", {"podProperties": {"containers": [CONTAINER_OVERRIDE]}}),
    ("ecsPropertiesOverride", {"taskProperties": [{"containers": [CONTAINER_OVERRIDE]}]}),
    ("consumableResourcePropertiesOverride", {"consumableResourceList": [{"consumableResource": "x", "quantity": 1}]}),
]


@pytest.mark.parametrize(("member", "value"), UNSUPPORTED_SUBMIT, ids=[m for m, _ in UNSUPPORTED_SUBMIT])
def test_submit_members_for_other_job_kinds_are_refused_not_ignored(batch, member, value):
    definition = define(batch, ["true"])["jobDefinitionArn"]
    name = unique("unsupported")
    error = client_error(
        batch.submit_job, jobName=name, jobQueue="default", jobDefinition=definition, **{member: value}
    )
    assert member in error["Message"] and "not supported" in error["Message"]
    listed = batch.list_jobs(jobQueue="default", filters=[{"name": "JOB_NAME", "values": [name]}])
    assert listed["jobSummaryList"] == []


def test_other_unsupported_members_are_refused_not_ignored(batch):
    error = client_error(
        batch.create_compute_environment,
        computeEnvironmentName=unique("eks"),
        type="MANAGED",
        computeResources={"subnets": [], "type": "EC2", "maxvCpus": 1},
        eksConfiguration={"eksClusterArn": "arn:aws:eks:us-east-1:123456789012:cluster/x", "kubernetesNamespace": "n"},
    )
    assert "eksConfiguration" in error["Message"]
    error = client_error(batch.list_jobs, multiNodeJobId=str(uuid.uuid4()))
    assert "multiNodeJobId" in error["Message"]
    error = client_error(
        batch.register_job_definition,
        jobDefinitionName=unique("eks"),
        type="container",
        containerProperties={"image": "x", "command": ["true"]},
        eksProperties={"podProperties": {"containers": [{"image": "x"}]}},
    )
    assert "eksProperties" in error["Message"]
    error = client_error(
        batch.create_job_queue,
        jobQueueName=unique("q"),
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "default"}],
        jobQueueType="SAGEMAKER_TRAINING",
    )
    assert "jobQueueType" in error["Message"]


def test_compute_environment_and_queue_report_documented_defaults(batch):
    name = unique("ce")
    batch.create_compute_environment(
        computeEnvironmentName=name,
        type="MANAGED",
        computeResources={"subnets": [], "type": "EC2", "minvCpus": 1, "maxvCpus": 4},
    )
    ce = batch.describe_compute_environments(computeEnvironments=[name])["computeEnvironments"][0]
    assert ce["computeResources"]["desiredvCpus"] == 1
    assert ce["updatePolicy"] == {"terminateJobsOnUpdate": False, "jobExecutionTimeoutMinutes": 30}
    batch.update_compute_environment(
        computeEnvironment=name, computeResources={"minvCpus": 2}, updatePolicy={"jobExecutionTimeoutMinutes": 60}
    )
    ce = batch.describe_compute_environments(computeEnvironments=[name])["computeEnvironments"][0]
    assert ce["computeResources"]["desiredvCpus"] == 2  # kept within the new bounds
    assert ce["updatePolicy"] == {"terminateJobsOnUpdate": False, "jobExecutionTimeoutMinutes": 60}
    queue = unique("q")
    batch.create_job_queue(
        jobQueueName=queue, priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": name}]
    )
    assert batch.describe_job_queues(jobQueues=[queue])["jobQueues"][0]["jobQueueType"] == "ECS"
    fargate = unique("fargate")
    batch.create_compute_environment(
        computeEnvironmentName=fargate,
        type="MANAGED",
        computeResources={"subnets": [], "type": "FARGATE", "maxvCpus": 4},
    )
    described = batch.describe_compute_environments(computeEnvironments=[fargate])["computeEnvironments"][0]
    assert "desiredvCpus" not in described["computeResources"]  # not applicable to Fargate
    fargate_queue = unique("q")
    batch.create_job_queue(
        jobQueueName=fargate_queue, priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": fargate}]
    )
    assert batch.describe_job_queues(jobQueues=[fargate_queue])["jobQueues"][0]["jobQueueType"] == "ECS_FARGATE"


def test_job_responses_carry_task_arns_array_summary_and_propagated_tags(batch):
    definition = define(batch, ["true"], propagateTags=True, tags={"team": "genomics"})["jobDefinitionArn"]
    job_id = submit(batch, definition, tags={"sample": "NA12878"})
    detail = wait_for(batch, job_id)
    assert detail["propagateTags"] is True  # from the job definition
    assert detail["tags"] == {"team": "genomics", "sample": "NA12878"}
    task_arn = detail["attempts"][0]["container"]["taskArn"]
    assert task_arn.startswith("arn:aws:ecs:") and ":task/default/" in task_arn
    assert ":container-instance/default/" in detail["attempts"][0]["container"]["containerInstanceArn"]
    assert detail["container"]["taskArn"] == task_arn
    overridden = wait_for(batch, submit(batch, definition, propagateTags=False))
    assert overridden["propagateTags"] is False and overridden["tags"] == {}

    array_id = submit(batch, definition, "array", arrayProperties={"size": 2})
    parent = wait_for(batch, array_id)
    assert parent["arrayProperties"]["statusSummaryLastUpdatedAt"] >= parent["createdAt"]
    (summary,) = [
        s
        for s in batch.list_jobs(jobQueue="default", jobStatus="SUCCEEDED")["jobSummaryList"]
        if s["jobId"] == array_id
    ]
    assert summary["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 2
    assert (
        summary["arrayProperties"]["statusSummaryLastUpdatedAt"]
        == parent["arrayProperties"]["statusSummaryLastUpdatedAt"]
    )


def test_jobs_see_the_environment_an_ecs_task_has(genobatch_server, batch):
    command = ["sh", "-c", 'echo "exec=$AWS_EXECUTION_ENV region=$AWS_REGION default=$AWS_DEFAULT_REGION"']
    ec2 = wait_for(batch, submit(batch, define(batch, command)["jobDefinitionArn"]))
    fargate_definition = define(batch, command, platformCapabilities=["FARGATE"])["jobDefinitionArn"]
    fargate = wait_for(batch, submit(batch, fargate_definition))
    region = ec2["jobArn"].split(":")[3]
    for detail, platform in ((ec2, "AWS_ECS_EC2"), (fargate, "AWS_ECS_FARGATE")):
        assert detail["status"] == "SUCCEEDED"
        text = genobatch_server.native(f"/jobs/{detail['jobId']}/logs")["data"]
        assert f"exec={platform} region={region} default={region}" in text


def test_cancel_and_terminate_reasons_are_limited_to_1024_characters(batch):
    job_id = submit(batch, define(batch, ["true"], vcpus=4096)["jobDefinitionArn"], "held")
    for call in (batch.cancel_job, batch.terminate_job):
        error = client_error(call, jobId=job_id, reason="r" * 1025)
        assert "reason" in error["Message"] and "1024" in error["Message"]
    assert batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"] == "RUNNABLE"
    batch.cancel_job(jobId=job_id, reason="r" * 1024)
    assert wait_for(batch, job_id)["statusReason"] == "r" * 1024


def test_array_child_arns_cannot_be_tagged(batch):
    parent = batch.submit_job(
        jobName="tagged",
        jobQueue="default",
        jobDefinition=define(batch, ["true"])["jobDefinitionArn"],
        arrayProperties={"size": 2},
    )
    error = client_error(batch.tag_resource, resourceArn=parent["jobArn"] + ":0", tags={"a": "b"})
    assert "child" in error["Message"]
    batch.tag_resource(resourceArn=parent["jobArn"], tags={"a": "b"})
    assert batch.list_tags_for_resource(resourceArn=parent["jobArn"])["tags"] == {"a": "b"}


def test_documented_request_limits_of_resources(batch):
    error = client_error(batch.describe_compute_environments, computeEnvironments=[f"ce{i}" for i in range(101)])
    assert "computeEnvironments" in error["Message"] and "100" in error["Message"]
    error = client_error(batch.describe_job_queues, jobQueues=[f"q{i}" for i in range(101)])
    assert "jobQueues" in error["Message"] and "100" in error["Message"]
    error = client_error(
        batch.create_compute_environment,
        computeEnvironmentName=unique("ce"),
        type="MANAGED",
        unmanagedvCpus=4,
        computeResources={"type": "EC2", "maxvCpus": 1, "subnets": []},
    )
    assert "unmanagedvCpus" in error["Message"]
    error = client_error(batch.update_compute_environment, computeEnvironment="default", unmanagedvCpus=4)
    assert "unmanagedvCpus" in error["Message"]
    error = client_error(
        batch.create_compute_environment,
        computeEnvironmentName=unique("ce"),
        type="MANAGED",
        computeResources={"type": "EC2", "minvCpus": -2, "maxvCpus": 1, "subnets": []},
    )
    assert "minvCpus" in error["Message"]
    fargate = unique("fargate")
    batch.create_compute_environment(
        computeEnvironmentName=fargate,
        type="MANAGED",
        computeResources={"type": "FARGATE", "maxvCpus": 4, "subnets": []},
    )
    name = unique("mixed")
    error = client_error(
        batch.create_job_queue,
        jobQueueName=name,
        priority=1,
        computeEnvironmentOrder=[
            {"order": 1, "computeEnvironment": "default"},
            {"order": 2, "computeEnvironment": fargate},
        ],
    )
    assert "computeEnvironmentOrder" in error["Message"] and "mixed" in error["Message"]
    assert batch.describe_job_queues(jobQueues=[name])["jobQueues"] == []


def test_documented_job_definition_and_submit_rules(batch):
    error = client_error(
        batch.register_job_definition,
        jobDefinitionName=unique("prio"),
        type="container",
        containerProperties={"image": "x", "command": ["true"]},
        schedulingPriority=10000,
    )
    assert "schedulingPriority" in error["Message"]
    # The name may start with any allowed character (jobName, unlike it, must start alphanumeric).
    name = "_" + unique("lead")
    batch.register_job_definition(
        jobDefinitionName=name, type="container", containerProperties={"image": "x", "command": ["true"]}
    )
    error = client_error(
        batch.submit_job,
        jobName="x",
        jobQueue="default",
        jobDefinition=name,
        containerOverrides={"instanceType": "p3.2xlarge"},
    )
    assert "containerOverrides.instanceType" in error["Message"]


def test_job_definition_filter_matches_underscores_literally(batch):
    stem = uuid.uuid4().hex[:8]
    exact, lookalike = f"a_{stem}", f"aX{stem}"
    for name in (exact, lookalike):
        batch.register_job_definition(
            jobDefinitionName=name, type="container", containerProperties={"image": "x", "command": ["true"]}
        )
        batch.submit_job(jobName=name, jobQueue="default", jobDefinition=name)
    for value in (exact, f"a_{stem[:4]}*"):
        listed = batch.list_jobs(jobQueue="default", filters=[{"name": "JOB_DEFINITION", "values": [value]}])
        assert [s["jobName"] for s in listed["jobSummaryList"]] == [exact]
    arn = batch.describe_job_definitions(jobDefinitionName=exact)["jobDefinitions"][0]["jobDefinitionArn"]
    error = client_error(
        batch.list_jobs, jobQueue="default", filters=[{"name": "JOB_DEFINITION", "values": [arn[:-2] + "*"]}]
    )
    assert "JOB_DEFINITION" in error["Message"]


def test_compute_environment_defaults_to_the_service_linked_role(batch):
    name = unique("ce")
    batch.create_compute_environment(
        computeEnvironmentName=name, type="MANAGED", computeResources={"type": "EC2", "maxvCpus": 1, "subnets": []}
    )
    described = batch.describe_compute_environments(computeEnvironments=[name])["computeEnvironments"][0]
    account = described["computeEnvironmentArn"].split(":")[4]
    expected = f"arn:aws:iam::{account}:role/aws-service-role/batch.amazonaws.com/AWSServiceRoleForBatch"
    assert described["serviceRole"] == expected


def test_secrets_are_refused_rather_than_dropped(batch):
    name = unique("secret")
    error = client_error(
        batch.register_job_definition,
        jobDefinitionName=name,
        type="container",
        containerProperties={
            "image": "x",
            "command": ["true"],
            "secrets": [{"name": "TOKEN", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/token"}],
        },
    )
    assert "containerProperties.secrets" in error["Message"]
    assert batch.describe_job_definitions(jobDefinitionName=name)["jobDefinitions"] == []


@pytest.mark.slow
def test_job_queue_snapshot_lists_runnable_jobs_in_dispatch_order(batch):
    ce = unique("snap")
    arn = batch.create_compute_environment(
        computeEnvironmentName=ce, type="MANAGED", computeResources={"type": "EC2", "maxvCpus": 1, "subnets": []}
    )["computeEnvironmentArn"]
    queue = unique("snap")
    batch.create_job_queue(
        jobQueueName=queue, priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": arn}]
    )
    sleeper = define(batch, ["sleep", "30"])["jobDefinitionArn"]
    submitted = [
        batch.submit_job(jobName=f"s{i}", jobQueue=queue, jobDefinition=sleeper, **extra)
        for i, extra in enumerate([{}, {}, {}, {"schedulingPriorityOverride": 5}])
    ]
    wait_for(batch, submitted[0]["jobId"], ("RUNNING",))
    snapshot = batch.get_job_queue_snapshot(jobQueue=queue)
    # Dispatch order: higher scheduling priority first, then submission order.
    expected = [submitted[3]["jobArn"], submitted[1]["jobArn"], submitted[2]["jobArn"]]
    assert [job["jobArn"] for job in snapshot["frontOfQueue"]["jobs"]] == expected
    assert snapshot["queueUtilization"]["totalCapacityUsage"] == [{"capacityUnit": "VCPU", "quantity": 1.0}]
    for job in submitted:
        batch.terminate_job(jobId=job["jobId"], reason="done")
    error = client_error(batch.get_job_queue_snapshot, jobQueue="no-such-queue")
    assert "no-such-queue" in error["Message"]


def test_members_documented_as_not_for_fargate_are_refused(batch):
    name = unique("fargate")
    error = client_error(
        batch.create_compute_environment,
        computeEnvironmentName=name,
        type="MANAGED",
        computeResources={"type": "FARGATE", "maxvCpus": 4, "minvCpus": 1, "subnets": []},
    )
    assert "computeResources.minvCpus" in error["Message"] and "FARGATE" in error["Message"]
    assert batch.describe_compute_environments(computeEnvironments=[name])["computeEnvironments"] == []
    batch.create_compute_environment(
        computeEnvironmentName=name,
        type="MANAGED",
        computeResources={"type": "FARGATE_SPOT", "maxvCpus": 4, "subnets": [], "instanceTypes": ["m5.large"]},
    )
    error = client_error(
        batch.update_compute_environment,
        computeEnvironment=name,
        computeResources={"allocationStrategy": "BEST_FIT_PROGRESSIVE"},
    )
    assert "computeResources.allocationStrategy" in error["Message"]
    described = batch.describe_compute_environments(computeEnvironments=[name])["computeEnvironments"][0]
    assert "allocationStrategy" not in described["computeResources"]

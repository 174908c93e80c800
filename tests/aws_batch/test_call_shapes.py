"""The AWS Batch engine's requests against botocore's model of the real service (no server needed).

boto3 validates every call's parameters before sending, so the end-to-end tests already fail on a
malformed call; these pin the shapes of the calls that matter for real AWS and the mapping of an
attempt onto them (overrides, reserved variables, GPUs, the backstop timeout).
"""

from __future__ import annotations

import botocore.session
import pytest
from aws_remote import attempt
from botocore.validate import validate_parameters

from genobatch.backends.aws_batch import (
    TIMEOUT_BACKSTOP_S,
    container_overrides,
    definition_body,
    remote_definition_name,
    submit_request,
)

pytestmark = pytest.mark.no_store
MODEL = botocore.session.get_session().get_service_model("batch")


def test_submit_job_request_matches_the_model_and_carries_the_attempt(tmp_path):
    spec = attempt(
        tmp_path,
        ["python", "run.py", "--sample", "it's"],
        job_id="0f0f0f0f-0000-4000-8000-000000000000:3",
        vcpus=8,
        memory_mib=30000,
        gpu_count=2,
        timeout_s=3600,
        environment={"AWS_BATCH_JOB_ARRAY_INDEX": "3", "SAMPLE": "s3"},
    )
    request = submit_request(spec, "arn:aws:batch:us-east-1:123456789012:job-queue/gpu", "gb-echoer-3-abc:1")
    validate_parameters(request, MODEL.operation_model("SubmitJob").input_shape)
    assert request["jobName"] == "gb_0f0f0f0f-0000-4000-8000-000000000000_3_1"
    assert request["retryStrategy"] == {"attempts": 1}
    assert request["timeout"] == {"attemptDurationSeconds": 3600 + TIMEOUT_BACKSTOP_S}
    overrides = request["containerOverrides"]
    assert overrides["resourceRequirements"] == [
        {"type": "VCPU", "value": "8"},
        {"type": "MEMORY", "value": "30000"},
        {"type": "GPU", "value": "2"},
    ]
    names = {item["name"]: item["value"] for item in overrides["environment"]}
    # AWS refuses AWS_BATCH_* overrides; genobatch's values travel under another name...
    assert not any(name.startswith("AWS_BATCH_") for name in names)
    assert names["GENOBATCH_AWS_BATCH_JOB_ARRAY_INDEX"] == "3" and names["SAMPLE"] == "s3"
    assert "AWS_REGION" not in names  # the remote platform sets its own
    # ...and the prologue restores them before running the command unchanged.
    assert overrides["command"][:2] == ["/bin/sh", "-c"]
    assert 'export AWS_BATCH_JOB_ARRAY_INDEX="$GENOBATCH_AWS_BATCH_JOB_ARRAY_INDEX"' in overrides["command"][2]
    assert overrides["command"][3:] == ["genobatch", "python", "run.py", "--sample", "it's"]


def test_register_job_definition_body_matches_the_model_without_per_job_values(tmp_path):
    container = {
        "image": "public.ecr.aws/biocontainers/samtools:1.17",
        "command": ["samtools", "sort"],
        "environment": [{"name": "A", "value": "1"}],
        "resourceRequirements": [{"type": "VCPU", "value": "4"}],
        "jobRoleArn": "arn:aws:iam::123456789012:role/genomics",
        "mountPoints": [{"containerPath": "/data", "sourceVolume": "scratch"}],
        "volumes": [{"name": "scratch", "host": {"sourcePath": "/scratch"}}],
        "genobatchInternal": "not a container property",
    }
    body = definition_body(container)
    assert set(body) == {"image", "jobRoleArn", "mountPoints", "volumes"}
    name = remote_definition_name("arn:aws:batch:us-east-1:000000000000:job-definition/sort_bam:12", body)
    request = {"jobDefinitionName": name, "type": "container", "containerProperties": body}
    validate_parameters(request, MODEL.operation_model("RegisterJobDefinition").input_shape)
    assert name.startswith("gb-sort_bam-12-") and len(name) <= 128
    # The same content under the same definition: the same name (so it is reused).
    assert remote_definition_name("sort_bam:12", dict(reversed(list(body.items())))) == name


def test_an_attempt_without_a_command_keeps_the_definitions_own(tmp_path):
    spec = attempt(tmp_path, [])
    assert "command" not in container_overrides(spec)

"""A compute environment's backend is chosen by its tags; bad or changed backend tags are refused."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create(batch, name: str, tags: dict[str, str]) -> dict:
    return batch.create_compute_environment(
        computeEnvironmentName=name,
        type="MANAGED",
        computeResources={"type": "EC2", "maxvCpus": 2, "subnets": [], "instanceTypes": ["c5.large"]},
        tags=tags,
    )


def test_an_unknown_backend_is_refused_naming_the_tag_and_nothing_is_stored(batch):
    name = unique("ce")
    with pytest.raises(ClientError) as refused:
        create(batch, name, {"genobatch:backend": "kubernetes"})
    error = refused.value.response["Error"]
    assert error["Code"] == "ClientException"
    assert "genobatch:backend" in error["Message"] and "kubernetes" in error["Message"]
    assert batch.describe_compute_environments(computeEnvironments=[name])["computeEnvironments"] == []


def test_backend_tags_cannot_change_after_creation_but_other_tags_can(batch):
    arn = create(batch, unique("ce"), {"genobatch:backend": "local", "team": "genomics"})["computeEnvironmentArn"]
    for change in (
        lambda: batch.tag_resource(resourceArn=arn, tags={"genobatch:backend": "slurm"}),
        lambda: batch.tag_resource(resourceArn=arn, tags={"genobatch:slurm-partition": "debug"}),
        lambda: batch.untag_resource(resourceArn=arn, tagKeys=["genobatch:backend"]),
    ):
        with pytest.raises(ClientError) as refused:
            change()
        assert "genobatch:" in refused.value.response["Error"]["Message"]
    batch.tag_resource(resourceArn=arn, tags={"owner": "lab"})
    batch.untag_resource(resourceArn=arn, tagKeys=["team"])
    tags = batch.list_tags_for_resource(resourceArn=arn)["tags"]
    assert tags == {"genobatch:backend": "local", "owner": "lab"}

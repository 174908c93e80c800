"""Members and enum values a newer botocore adds to a served operation are refused, never ignored.

``api/reviewed_model.json`` records what genobatch was reviewed against. The installed botocore may
be newer (the pinned set is): whatever its model adds to an operation genobatch serves must get a
ClientException naming it, through the real server and a real boto3 client that accepts it.
"""

from __future__ import annotations

import botocore.session
import pytest
from botocore.exceptions import ClientError

from genobatch.api.app import HANDLERS
from genobatch.api.logs import OPERATIONS as LOGS_OPERATIONS
from genobatch.api.reviewed import reviewed_operations, snapshot, unreviewed
from genobatch.api.stepfunctions import OPERATIONS as SFN_OPERATIONS

SERVICE = botocore.session.get_session().get_service_model("batch")


def test_every_served_operation_was_reviewed() -> None:
    assert set(HANDLERS) <= reviewed_operations("batch")
    assert set(LOGS_OPERATIONS) <= reviewed_operations("logs")
    assert set(SFN_OPERATIONS) <= reviewed_operations("stepfunctions")


def test_an_unreviewed_enum_value_and_member_are_named() -> None:
    request = {
        "computeEnvironmentName": "ce",
        "type": "MANAGED",
        "computeResources": {"type": "ECS_MANAGED_INSTANCES", "maxvCpus": 2, "subnets": [], "futureMember": 1},
        "tags": {"anyKey": "map keys are data, not members"},
    }
    problems = unreviewed("CreateComputeEnvironment", request)
    assert any("computeResources.type: 'ECS_MANAGED_INSTANCES' is not supported" in p for p in problems)
    assert any(p.startswith("computeResources.futureMember is not supported") for p in problems)
    assert len(problems) == 2


def test_an_unreviewed_step_functions_member_and_enum_value_are_named() -> None:
    """Step Functions is checked against its own record (a member a newer botocore adds is refused)."""
    request = {"executionArn": "arn", "includedData": "EVERYTHING", "futureMember": {"a": 1}}
    problems = unreviewed("DescribeExecution", request, "stepfunctions")
    assert any(p.startswith("includedData: 'EVERYTHING' is not supported") for p in problems)
    assert any(p.startswith("futureMember is not supported") for p in problems)
    assert len(problems) == 2
    assert (
        unreviewed("DescribeExecution", {"executionArn": "arn", "includedData": "METADATA_ONLY"}, "stepfunctions") == []
    )


def _newer_than_reviewed() -> list[tuple[str, str, str]]:
    """(operation, path, member-or-enum) that the installed model has and the record does not."""
    from genobatch.api.reviewed import _record

    live = snapshot(SERVICE, HANDLERS)
    recorded = _record()["services"]["batch"]
    added = []
    for operation, shapes in live.items():
        for kind in ("members", "enums"):
            for path, names in shapes[kind].items():
                old = recorded[operation][kind].get(path)
                if old is not None:
                    added += [(operation, path, name) for name in sorted(set(names) - set(old))]
    return added


def test_refused_through_the_server(batch) -> None:
    """Concrete cases for the pinned botocore (1.44.8 adds these); skipped on a model without them."""
    added = {(op, path, name) for op, path, name in _newer_than_reviewed()}
    cases = []
    if ("CreateComputeEnvironment", "", "ecsSettings") in added:
        cases.append(
            lambda: batch.create_compute_environment(
                computeEnvironmentName="newer-member", type="UNMANAGED", ecsSettings={"containerInsights": "ENABLED"}
            )
        )
    if ("RegisterJobDefinition", "platformCapabilities[]", "MANAGED_INSTANCES") in added:
        cases.append(
            lambda: batch.register_job_definition(
                jobDefinitionName="newer-enum",
                type="container",
                platformCapabilities=["MANAGED_INSTANCES"],
                containerProperties={"image": "busybox", "command": ["true"], "vcpus": 1, "memory": 64},
            )
        )
    if not cases:
        pytest.skip("the installed botocore adds none of these cases beyond the reviewed model")
    for case in cases:
        with pytest.raises(ClientError) as error:
            case()
        assert error.value.response["Error"]["Code"] == "ClientException"
        assert "is not supported by genobatch" in error.value.response["Error"]["Message"]
    assert not batch.describe_compute_environments(computeEnvironments=["newer-member"])["computeEnvironments"]
    assert not batch.describe_job_definitions(jobDefinitionName="newer-enum")["jobDefinitions"]

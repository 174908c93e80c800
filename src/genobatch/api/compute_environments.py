"""Compute environment operations: Create, Update, Delete, Describe."""

from __future__ import annotations

import uuid

from genobatch.api import limits
from genobatch.api.errors import ClientException
from genobatch.api.paging import paged_response
from genobatch.api.resources import check_new, check_reference_count, require
from genobatch.backends.registry import check_tags
from genobatch.context import Context
from genobatch.engine import ConfigureBackend, apply_compute_environment
from genobatch.store import catalog

KIND = "compute-environment"
FARGATE_TYPES = ("FARGATE", "FARGATE_SPOT")
#: UpdatePolicy's documented defaults, which DescribeComputeEnvironments reports when none was set.
DEFAULT_UPDATE_POLICY = {"terminateJobsOnUpdate": False, "jobExecutionTimeoutMinutes": 30}


def _with_defaults(resources: dict) -> dict:
    """computeResources as AWS reports them: ``subnets`` is a required member of the output shape,
    and EC2/SPOT environments always carry min/desired vCPUs (``desiredvCpus`` starts at
    ``minvCpus``; Fargate environments have neither)."""
    resources = {"subnets": [], **resources}
    if resources.get("type") in FARGATE_TYPES:
        return resources
    resources = {"minvCpus": 0, **resources}
    resources.setdefault("desiredvCpus", resources["minvCpus"])
    return resources


#: ComputeResource members whose API documentation says "isn't applicable to jobs that are running on
#: Fargate resources. Don't specify it." ``instanceTypes`` (and ``tags``) are kept: genobatch prices a
#: Fargate compute environment as the EC2 type ``instanceTypes[0]`` names (see cost/billing.py).
FARGATE_NOT_APPLICABLE = (
    "allocationStrategy",
    "minvCpus",
    "desiredvCpus",
    "imageId",
    "ec2KeyPair",
    "instanceRole",
    "placementGroup",
    "bidPercentage",
    "spotIamFleetRole",
    "launchTemplate",
    "ec2Configuration",
    "scalingPolicy",
)


def _check_fargate(kind: str | None, given: dict) -> None:
    if kind not in FARGATE_TYPES:
        return
    for member in FARGATE_NOT_APPLICABLE:
        if member in given:
            raise ClientException(f"computeResources.{member} is not applicable to a {kind} compute environment")


def _check_vcpus(resources: dict) -> None:
    low, high = resources.get("minvCpus", 0), resources.get("maxvCpus")
    if low < 0:
        raise ClientException("computeResources.minvCpus must not be negative")
    if high is not None and high < 1:
        raise ClientException("computeResources.maxvCpus must be at least 1")
    if high is not None and low > high:
        raise ClientException("computeResources.minvCpus must not exceed computeResources.maxvCpus")
    desired = resources.get("desiredvCpus")
    if desired is not None and high is not None and not low <= desired <= high:
        raise ClientException("computeResources.desiredvCpus must be between minvCpus and maxvCpus")


def _service_linked_role(ctx: Context) -> str:
    account = ctx.settings.account_id
    return f"arn:aws:iam::{account}:role/aws-service-role/batch.amazonaws.com/AWSServiceRoleForBatch"


def _check_unmanaged_vcpus(kind: str, request: dict) -> None:
    if "unmanagedvCpus" in request and kind != "UNMANAGED":
        raise ClientException("unmanagedvCpus applies only to an UNMANAGED compute environment")


def create_compute_environment(ctx: Context, request: dict) -> dict:
    name = request["computeEnvironmentName"]
    check_new(ctx, KIND, name)
    limits.refuse_unsupported(
        request, {"eksConfiguration": "Amazon EKS compute environments are not supported by genobatch"}
    )
    _check_unmanaged_vcpus(request["type"], request)
    resources = request.get("computeResources")
    if request["type"] == "MANAGED":
        if not resources:
            raise ClientException("computeResources is required for a MANAGED compute environment")
        if "maxvCpus" not in resources:
            raise ClientException("computeResources.maxvCpus is required")
        _check_fargate(resources.get("type"), resources)
        _check_vcpus(resources)
    try:
        check_tags(name, request.get("tags"))
    except ValueError as problem:
        raise ClientException(str(problem)) from None
    arn = ctx.arn("compute-environment", name)
    document = {
        "computeEnvironmentName": name,
        "computeEnvironmentArn": arn,
        "ecsClusterArn": ctx.arn("cluster", name).replace(":batch:", ":ecs:"),
        "tags": request.get("tags", {}),
        "type": request["type"],
        "state": request.get("state", "ENABLED"),
        "status": "VALID",
        "statusReason": "ComputeEnvironment Healthy",
        # API_CreateComputeEnvironment: without one, the Batch service-linked role is used.
        "serviceRole": request.get("serviceRole") or _service_linked_role(ctx),
        "uuid": str(uuid.uuid4()),
        "containerOrchestrationType": "ECS",
        "updatePolicy": dict(DEFAULT_UPDATE_POLICY),
    }
    if resources:
        document["computeResources"] = _with_defaults(resources)
    if "unmanagedvCpus" in request:
        document["unmanagedvCpus"] = request["unmanagedvCpus"]
    if "context" in request:
        document["context"] = request["context"]
    catalog.put_document(ctx.conn, KIND, document, ctx.now, new=True)
    catalog.set_tags(ctx.conn, arn, request.get("tags", {}))
    apply_compute_environment(ctx.writable, document)
    ctx.actions.append(ConfigureBackend(name, document["tags"]))
    return {"computeEnvironmentName": name, "computeEnvironmentArn": arn}


def update_compute_environment(ctx: Context, request: dict) -> dict:
    document = dict(require(ctx, KIND, request["computeEnvironment"]))
    _check_unmanaged_vcpus(document.get("type", "MANAGED"), request)
    if "state" in request:
        document["state"] = request["state"]
    if "computeResources" in request:
        merged = {**document.get("computeResources", {}), **request["computeResources"]}
        if "desiredvCpus" in merged and "desiredvCpus" not in request["computeResources"]:
            # Batch moves desiredvCpus itself; keep it inside the new bounds rather than refuse them.
            low, high = merged.get("minvCpus", 0), merged.get("maxvCpus", merged["desiredvCpus"])
            merged["desiredvCpus"] = min(max(merged["desiredvCpus"], low), high)
        _check_fargate(merged.get("type"), request["computeResources"])
        _check_vcpus(merged)
        document["computeResources"] = merged
    if "updatePolicy" in request:
        document["updatePolicy"] = {**document.get("updatePolicy", DEFAULT_UPDATE_POLICY), **request["updatePolicy"]}
    for key in ("unmanagedvCpus", "serviceRole", "context"):
        if key in request:
            document[key] = request[key]
    catalog.put_document(ctx.conn, KIND, document, ctx.now, new=False)
    apply_compute_environment(ctx.writable, document)
    return {
        "computeEnvironmentName": document["computeEnvironmentName"],
        "computeEnvironmentArn": document["computeEnvironmentArn"],
    }


def delete_compute_environment(ctx: Context, request: dict) -> dict:
    document = require(ctx, KIND, request["computeEnvironment"])
    name, arn = document["computeEnvironmentName"], document["computeEnvironmentArn"]
    if document.get("state") != "DISABLED":
        raise ClientException(f"Cannot delete, computeEnvironment {name} is not DISABLED")
    for queue in catalog.list_documents(ctx.conn, "job-queue"):
        if any(item["computeEnvironment"] == arn for item in queue.get("computeEnvironmentOrder", [])):
            raise ClientException(
                f"Cannot delete, computeEnvironment {name} is used by job queue {queue['jobQueueName']}"
            )
    ce = ctx.writable.compute_environments.get(name)
    if ce is not None and ce.used_vcpus:
        raise ClientException(f"Cannot delete, computeEnvironment {name} still has running jobs")
    catalog.delete_document(ctx.conn, KIND, name)
    catalog.remove_tags(ctx.conn, arn, list(catalog.get_tags(ctx.conn, arn)))
    ctx.writable.remove_compute_environment(name)
    ctx.actions.append(ConfigureBackend(name, None))
    return {}


def describe_compute_environments(ctx: Context, request: dict) -> dict:
    check_reference_count("computeEnvironments", request.get("computeEnvironments", []))
    documents = catalog.list_documents(ctx.conn, KIND, request.get("computeEnvironments", []))
    # Environments stored by earlier versions get the same documented defaults on the way out.
    for document in documents:
        if "computeResources" in document:
            document["computeResources"] = _with_defaults(document["computeResources"])
    return paged_response(documents, request, "computeEnvironments")

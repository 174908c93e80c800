"""Job definition operations: Register (new revision), Deregister (INACTIVE), Describe."""

from __future__ import annotations

from genobatch.api import limits
from genobatch.api.errors import ClientException
from genobatch.api.paging import page_size
from genobatch.api.resources import MAX_DESCRIBE, RESOURCE_NAME, check_reference_count
from genobatch.context import Context
from genobatch.store import catalog

MAX_DEFINITION_BYTES = 24 * 1024
MAX_SCHEDULING_PRIORITY = 9999
#: Members for kinds of job genobatch does not run; refused rather than ignored.
UNSUPPORTED_DEFINITION = {
    "nodeProperties": "multi-node parallel jobs are not supported by genobatch",
    "eksProperties": "Amazon EKS jobs are not supported by genobatch; use containerProperties",
    "ecsProperties": "multi-container (ecsProperties) jobs are not supported by genobatch; use containerProperties",
    "consumableResourceProperties": "consumable resources are not supported by genobatch",
}


def register_job_definition(ctx: Context, request: dict) -> dict:
    name = request["jobDefinitionName"]
    # API_RegisterJobDefinition: up to 128 letters, numbers, hyphens and underscores (unlike
    # jobName, no rule on the first character).
    if not RESOURCE_NAME.fullmatch(name):
        raise ClientException(
            f"jobDefinitionName {name[:64]!r} is invalid: it must be 1-128 letters, numbers, hyphens and underscores"
        )
    priority = request.get("schedulingPriority")
    if priority is not None and not 0 <= priority <= MAX_SCHEDULING_PRIORITY:
        raise ClientException(f"schedulingPriority must be between 0 and {MAX_SCHEDULING_PRIORITY}")
    limits.refuse_unsupported(request, UNSUPPORTED_DEFINITION)
    if request["type"] != "container":
        raise ClientException(f"type {request['type']}: only 'container' job definitions are supported")
    container = request.get("containerProperties")
    if not container:
        raise ClientException("containerProperties is required for a container job definition")
    if "secrets" in container:
        # Silently dropping them would run the job without variables it relies on.
        raise ClientException(
            "containerProperties.secrets is not supported: genobatch cannot read Secrets Manager or SSM "
            "Parameter Store; pass the values with containerProperties.environment"
        )
    if len(str(request)) > MAX_DEFINITION_BYTES:
        raise ClientException("Job definition is larger than 24 KiB")
    limits.check_resource_requirements(
        "containerProperties.resourceRequirements", container.get("resourceRequirements")
    )
    limits.check_environment("containerProperties.environment", container.get("environment"))
    limits.check_retry_strategy("retryStrategy", request.get("retryStrategy"))
    limits.check_timeout("timeout", request.get("timeout"))
    limits.check_tags("tags", request.get("tags"))
    revision = catalog.next_revision(ctx.conn, name)
    arn = ctx.arn("job-definition", f"{name}:{revision}")
    document = {
        "jobDefinitionName": name,
        "jobDefinitionArn": arn,
        "revision": revision,
        "status": "ACTIVE",
        "type": "container",
        "parameters": request.get("parameters", {}),
        "containerProperties": container,
        "tags": request.get("tags", {}),
        "propagateTags": request.get("propagateTags", False),
        "platformCapabilities": request.get("platformCapabilities", ["EC2"]),
        "containerOrchestrationType": "ECS",
    }
    for key in ("retryStrategy", "timeout", "schedulingPriority"):
        if key in request:
            document[key] = request[key]
    catalog.insert_definition(ctx.conn, document)
    catalog.set_tags(ctx.conn, arn, request.get("tags", {}))
    return {"jobDefinitionName": name, "jobDefinitionArn": arn, "revision": revision}


def deregister_job_definition(ctx: Context, request: dict) -> dict:
    reference = request["jobDefinition"]
    document = catalog.find_definition(ctx.conn, reference)
    if document is None:
        raise ClientException(f"jobDefinition {reference} does not exist")
    updated = {**document, "status": "INACTIVE"}
    catalog.set_definition_status(ctx.conn, document["jobDefinitionArn"], updated)
    return {}


def _split_reference(reference: str) -> tuple[str, int | None]:
    name, _, revision = reference.partition(":")
    number = catalog.parse_revision(revision) if revision else None
    if revision and number is None:
        raise ClientException(f"jobDefinitions: {reference[:64]!r} is not name, name:revision or an ARN")
    return name, number


def describe_job_definitions(ctx: Context, request: dict) -> dict:
    references = request.get("jobDefinitions", [])
    # API_DescribeJobDefinitions: "A list of up to 100 job definitions"; maxResults "can be
    # between 1 and 100".
    check_reference_count("jobDefinitions", references)
    limit = page_size(request.get("maxResults"), MAX_DESCRIBE)
    arns = [r for r in references if r.startswith("arn:")]
    name_revisions = [_split_reference(r) for r in references if not r.startswith("arn:")]
    documents = catalog.query_definitions(
        ctx.conn,
        arns=arns,
        name_revisions=name_revisions,
        name=request.get("jobDefinitionName"),
        status=request.get("status"),
        after_arn=request.get("nextToken"),
        limit=limit,
    )
    response: dict = {"jobDefinitions": documents[:limit]}
    if len(documents) > limit:
        response["nextToken"] = documents[limit - 1]["jobDefinitionArn"]
    return response

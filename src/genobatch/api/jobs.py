"""Job write operations: SubmitJob, CancelJob, TerminateJob.

SubmitJob resolves the request against its queue and definition, checks every documented limit,
and only then builds the scheduler's records (an array parent and its children, with N_TO_N and
SEQUENTIAL dependencies resolved to concrete child ids). Nothing is written for a bad request.
"""

from __future__ import annotations

import re
import uuid

from genobatch.api import limits
from genobatch.api.errors import ClientException
from genobatch.catalog_cache import find_definition, find_job_queue
from genobatch.context import Context, refuses_before_writing
from genobatch.core.array import expand_array, parent_dependencies
from genobatch.core.job import N_TO_N, SEQUENTIAL, Job
from genobatch.core.status import JobStatus
from genobatch.store import catalog
from genobatch.store import jobs as job_rows

MAX_DEPENDENCIES = 20
ARRAY_MIN, ARRAY_MAX = 2, 10_000
MAX_PRIORITY = 9999
MAX_REASON = 1024  # API_CancelJob / API_TerminateJob: reason "has as limit of 1024 characters"
REF = re.compile(r"Ref::([A-Za-z0-9_-]+)")
#: SubmitJob members for kinds of job genobatch does not run; refused rather than ignored.
UNSUPPORTED_SUBMIT = {
    "nodeOverrides": "multi-node parallel jobs are not supported by genobatch",
    "eksPropertiesOverride": "Amazon EKS jobs are not supported by genobatch; use containerOverrides",
    "ecsPropertiesOverride": "multi-container (ecsProperties) jobs are not supported by genobatch; "
    "use containerOverrides",
    "consumableResourcePropertiesOverride": "consumable resources are not supported by genobatch",
}


def substitute(command: list[str], parameters: dict[str, str]) -> list[str]:
    """Replace ``Ref::name`` placeholders with parameter values; unknown names stay as written."""
    return [REF.sub(lambda m: parameters.get(m.group(1), m.group(0)), arg) for arg in command]


def _queue(ctx: Context, reference: str) -> dict:
    queue = find_job_queue(ctx.conn, ctx.catalog, reference)
    if queue is None:
        raise ClientException(f"jobQueue {reference} does not exist")
    if queue.get("state") != "ENABLED":
        raise ClientException(f"jobQueue {queue['jobQueueName']} is DISABLED and does not accept new jobs")
    return queue


def _definition(ctx: Context, reference: str) -> dict:
    """Resolve ``name``, ``name:revision`` or an ARN with or without ``:revision``.

    API_SubmitJob: "If the revision is not specified, then the latest active revision is used" -
    for an ARN as for a name.
    """
    prefix = ctx.arn("job-definition", "")
    if reference.startswith(prefix) and ":" not in reference[len(prefix) :]:
        reference = reference[len(prefix) :]
    definition = find_definition(ctx.conn, ctx.catalog, reference)
    if definition is None:
        raise ClientException(f"jobDefinition {reference} does not exist or has no ACTIVE revision")
    if definition["status"] != "ACTIVE":
        raise ClientException(f"jobDefinition {definition['jobDefinitionArn']} is INACTIVE")
    return definition


def _container(definition: dict, overrides: dict, parameters: dict[str, str]) -> dict:
    """The definition's container with the submit-time overrides merged over it."""
    base = definition["containerProperties"]
    limits.check_resource_requirements("containerOverrides.resourceRequirements", overrides.get("resourceRequirements"))
    limits.check_environment("containerOverrides.environment", overrides.get("environment"))
    environment = {item["name"]: item["value"] for item in base.get("environment", [])}
    environment.update({item["name"]: item["value"] for item in overrides.get("environment", [])})
    container = {key: value for key, value in base.items() if key not in ("command", "environment")}
    container["command"] = substitute(overrides.get("command", base.get("command", [])), parameters)
    container["environment"] = [{"name": k, "value": v} for k, v in environment.items()]
    container["resourceRequirements"] = limits.merge_requirements(
        base.get("resourceRequirements"), overrides.get("resourceRequirements")
    )
    for legacy in ("vcpus", "memory"):
        if legacy in overrides:
            container[legacy] = overrides[legacy]
    if "instanceType" in overrides:
        # API ContainerOverrides: "isn't applicable to single-node container jobs ... and shouldn't
        # be provided"; accepting it would suggest it chose the instance.
        raise ClientException(
            "containerOverrides.instanceType is not supported: it applies to multi-node parallel jobs only"
        )
    if not container["command"]:
        raise ClientException("command: neither the job definition nor containerOverrides give a command")
    return container


def _dependency_statuses(
    ctx: Context, depends_on: list[dict], array_size: int | None
) -> tuple[list[tuple[str, str | None]], dict[str, JobStatus]]:
    """Validate dependsOn; return the (id, type) list and the stored status of each non-live id."""
    if len(depends_on) > MAX_DEPENDENCIES:
        raise ClientException(f"dependsOn: at most {MAX_DEPENDENCIES} dependencies per job")
    scheduler = ctx.writable
    resolved: list[tuple[str, str | None]] = []
    for entry in depends_on:
        dep_type, dep_id = entry.get("type"), entry.get("jobId")
        if dep_type == SEQUENTIAL:
            if array_size is None:
                raise ClientException("dependsOn: SEQUENTIAL applies only to array jobs")
            if dep_id:
                raise ClientException("dependsOn: a SEQUENTIAL dependency takes no jobId")
            resolved.append(("", SEQUENTIAL))
            continue
        if not dep_id:
            raise ClientException("dependsOn: jobId is required")
        resolved.append((dep_id, dep_type))
    ids = [dep_id for dep_id, dep_type in resolved if dep_type != SEQUENTIAL]
    stored = job_rows.statuses(ctx.conn, [i for i in ids if i not in scheduler.jobs])
    for dep_id, dep_type in resolved:
        if dep_type == SEQUENTIAL:
            continue
        if dep_id not in scheduler.jobs and dep_id not in stored:
            raise ClientException(f"dependsOn: job {dep_id} does not exist")
        if dep_type == N_TO_N:
            dep = scheduler.jobs.get(dep_id)
            dep_size = dep.array_size if dep is not None else job_rows.array_size_of(ctx.conn, dep_id)
            if array_size is None or dep_size != array_size:
                raise ClientException(
                    f"dependsOn: N_TO_N needs both jobs to be arrays of the same size ({dep_id} has "
                    f"{dep_size or 'no array'}, this job {array_size or 'no array'})"
                )
    # Children of N_TO_N dependencies that are no longer live are looked up in one query.
    child_ids = [f"{dep_id}:{i}" for dep_id, t in resolved if t == N_TO_N for i in range(array_size or 0)]
    stored.update(job_rows.statuses(ctx.conn, [c for c in child_ids if c not in scheduler.jobs]))
    return resolved, stored


def _validate_scalars(request: dict, queue: dict) -> None:
    limits.check_name("jobName", request["jobName"])
    size = request.get("arrayProperties", {}).get("size")
    if size is not None and not ARRAY_MIN <= size <= ARRAY_MAX:
        raise ClientException(f"arrayProperties.size must be between {ARRAY_MIN} and {ARRAY_MAX}")
    limits.check_retry_strategy("retryStrategy", request.get("retryStrategy"))
    limits.check_timeout("timeout", request.get("timeout"))
    limits.check_tags("tags", request.get("tags"))
    priority = request.get("schedulingPriorityOverride")
    if priority is not None and not 0 <= priority <= MAX_PRIORITY:
        raise ClientException(f"schedulingPriorityOverride must be between 0 and {MAX_PRIORITY}")
    if request.get("shareIdentifier") and not queue.get("schedulingPolicyArn"):
        raise ClientException("shareIdentifier is only allowed on job queues with a fair-share scheduling policy")


@refuses_before_writing  # its only write, the job's tags, is its last statement
def submit_job(ctx: Context, request: dict) -> dict:
    limits.refuse_unsupported(request, UNSUPPORTED_SUBMIT)
    queue = _queue(ctx, request["jobQueue"])
    _validate_scalars(request, queue)
    definition = _definition(ctx, request["jobDefinition"])
    parameters = {**definition.get("parameters", {}), **request.get("parameters", {})}
    container = _container(definition, request.get("containerOverrides", {}), parameters)
    array_size = request.get("arrayProperties", {}).get("size")
    depends_on, known = _dependency_statuses(ctx, request.get("dependsOn", []), array_size)
    retry = request.get("retryStrategy") or definition.get("retryStrategy") or {}
    timeout = request.get("timeout") or definition.get("timeout") or {}
    priority = request.get("schedulingPriorityOverride", definition.get("schedulingPriority", 0))
    # API_SubmitJob: propagateTags "overrides the tag propagation setting in the job definition".
    propagate = bool(request.get("propagateTags", definition.get("propagateTags", False)))
    tags = {**(definition.get("tags", {}) if propagate else {}), **request.get("tags", {})}

    job_id = str(uuid.uuid4())
    job = Job(
        id=job_id,
        name=request["jobName"],
        queue=queue["jobQueueName"],
        seq=ctx.allocate_seq(1),
        created_at=ctx.now,
        resources=limits.resources_of(container),
        priority=priority,
        max_attempts=retry.get("attempts", 1),
        evaluate_on_exit=tuple(retry.get("evaluateOnExit", ())),
        timeout_s=timeout.get("attemptDurationSeconds"),
        array_size=array_size,
        depends_on=parent_dependencies(depends_on),
    )
    spec = {
        "jobArn": ctx.arn("job", job_id),
        "jobQueue": queue["jobQueueArn"],
        "jobDefinition": definition["jobDefinitionArn"],
        "parameters": parameters,
        "container": container,
        "dependsOn": request.get("dependsOn", []),
        "retryStrategy": retry,
        "timeout": timeout,
        "tags": tags,
        "propagateTags": propagate,
        "platformCapabilities": definition.get("platformCapabilities", ["EC2"]),
        "schedulingPriority": priority,
        "scheduling": job_rows.scheduling_spec(job),
    }
    if array_size:
        spec["arrayProperties"] = {"size": array_size}
    records = [job] + (expand_array(job, depends_on) if array_size else [])
    ctx.writable.submit(records, known, ctx.now)
    share = request.get("shareIdentifier")
    definition_arn = definition["jobDefinitionArn"]
    ctx.new_jobs.extend((r, definition_arn, share, spec if r is job else None) for r in records)
    # A new job's ARN (a fresh uuid) has no tags to replace: set_tags' DELETE ... IN would be one
    # wasted query per job (tag writes were 11 % of the engine thread for a workflow's 1,000 jobs).
    catalog.insert_tags(ctx.conn, spec["jobArn"], tags)
    return {"jobArn": spec["jobArn"], "jobName": job.name, "jobId": job_id}


def _require_job(ctx: Context, job_id: str) -> bool:
    """True if the job is live (in the scheduler); False if it exists but is final."""
    if job_id in ctx.writable.jobs:
        return True
    if job_rows.statuses(ctx.conn, [job_id]):
        return False
    raise ClientException(f"jobId {job_id} does not exist")


def _check_reason(reason: str) -> None:
    if len(reason) > MAX_REASON:
        raise ClientException(f"reason must be at most {MAX_REASON} characters, got {len(reason)}")


def cancel_job(ctx: Context, request: dict) -> dict:
    _check_reason(request["reason"])
    if _require_job(ctx, request["jobId"]):
        ctx.writable.cancel(request["jobId"], request["reason"], ctx.now)
    return {}


def terminate_job(ctx: Context, request: dict) -> dict:
    """Terminating a finished job succeeds and changes nothing (clients do it on every job)."""
    _check_reason(request["reason"])
    if _require_job(ctx, request["jobId"]):
        ctx.actions.extend(ctx.writable.terminate(request["jobId"], request["reason"], ctx.now))
    return {}

"""Job queue operations: Create, Update, Delete, Describe."""

from __future__ import annotations

import heapq

from genobatch.api import limits
from genobatch.api.errors import ClientException
from genobatch.api.paging import paged_response
from genobatch.api.resources import check_new, check_reference_count, require
from genobatch.context import Context
from genobatch.core.job import TIME_LIMIT_REASONS
from genobatch.engine import apply_job_queue
from genobatch.store import catalog

KIND = "job-queue"
MAX_COMPUTE_ENVIRONMENTS_PER_QUEUE = 3
SNAPSHOT_SIZE = 100  # API_GetJobQueueSnapshot: "the first 100 RUNNABLE jobs"
UNSUPPORTED_QUEUE = {
    "serviceEnvironmentOrder": "service environments (SageMaker Training) are not supported by genobatch",
}


def _resolve_order(ctx: Context, order: list[dict]) -> list[dict]:
    """Validate computeEnvironmentOrder and return it with ARNs, sorted by ``order``."""
    if not order:
        raise ClientException("computeEnvironmentOrder must name at least one compute environment")
    if len(order) > MAX_COMPUTE_ENVIRONMENTS_PER_QUEUE:
        raise ClientException(
            f"computeEnvironmentOrder may name at most {MAX_COMPUTE_ENVIRONMENTS_PER_QUEUE} compute environments"
        )
    if len({item["order"] for item in order}) != len(order):
        raise ClientException("computeEnvironmentOrder: each entry needs a distinct order")
    resolved = []
    for item in sorted(order, key=lambda entry: entry["order"]):
        document = catalog.get_document(ctx.conn, "compute-environment", item["computeEnvironment"])
        if document is None:
            raise ClientException(
                f"computeEnvironmentOrder: computeEnvironment {item['computeEnvironment']} does not exist"
            )
        resolved.append({"order": item["order"], "computeEnvironment": document["computeEnvironmentArn"]})
    return resolved


def _queue_type(ctx: Context, order: list[dict], requested: str | None) -> str:
    """``ECS_FARGATE`` for Fargate compute environments, else ``ECS`` (API JobQueueDetail.jobQueueType).

    API_CreateJobQueue: "EC2 and Fargate compute environments can't be mixed."
    """
    kinds = set()
    for item in order:
        document = catalog.get_document(ctx.conn, "compute-environment", item["computeEnvironment"]) or {}
        kinds.add((document.get("computeResources") or {}).get("type") in ("FARGATE", "FARGATE_SPOT"))
    if len(kinds) > 1:
        raise ClientException(
            "computeEnvironmentOrder: EC2 (EC2, SPOT) and Fargate (FARGATE, FARGATE_SPOT) compute environments "
            "can't be mixed in one job queue"
        )
    derived = "ECS_FARGATE" if True in kinds else "ECS"
    if requested is not None and requested != derived:
        raise ClientException(
            f"jobQueueType {requested} does not match the queue's compute environments, which make it {derived}"
        )
    return derived


def _check_time_limit_actions(actions: list[dict]) -> None:
    """The User Guide's rules: RUNNABLE only, CANCEL only (TERMINATE is for SageMaker service
    environments), and only the reasons that support automatic remediation."""
    for index, action in enumerate(actions):
        field = f"jobStateTimeLimitActions[{index}]"
        if not 600 <= action["maxTimeSeconds"] <= 86400:
            raise ClientException(f"{field}.maxTimeSeconds must be between 600 and 86400")
        if action["state"] != "RUNNABLE":
            raise ClientException(f"{field}.state must be RUNNABLE, got {action['state']!r}")
        if action["action"] != "CANCEL":
            raise ClientException(
                f"{field}.action {action['action']!r} is not supported: job queues of ECS compute environments "
                "support only CANCEL (TERMINATE is for SageMaker Training service environments)"
            )
        if action["reason"] not in TIME_LIMIT_REASONS:
            raise ClientException(
                f"{field}.reason {action['reason'][:200]!r} does not support jobStateTimeLimitActions; "
                f"use one of {', '.join(TIME_LIMIT_REASONS)}"
            )


def create_job_queue(ctx: Context, request: dict) -> dict:
    name = request["jobQueueName"]
    check_new(ctx, KIND, name)
    limits.refuse_unsupported(request, UNSUPPORTED_QUEUE)
    if "schedulingPolicyArn" in request:
        raise ClientException("schedulingPolicyArn: fair-share scheduling policies are not supported yet")
    _check_time_limit_actions(request.get("jobStateTimeLimitActions", []))
    arn = ctx.arn("job-queue", name)
    order = _resolve_order(ctx, request["computeEnvironmentOrder"])
    document = {
        "jobQueueName": name,
        "jobQueueArn": arn,
        "state": request.get("state", "ENABLED"),
        "status": "VALID",
        "statusReason": "JobQueue Healthy",
        "priority": request["priority"],
        "computeEnvironmentOrder": order,
        "jobQueueType": _queue_type(ctx, order, request.get("jobQueueType")),
        "tags": request.get("tags", {}),
        "jobStateTimeLimitActions": request.get("jobStateTimeLimitActions", []),
    }
    catalog.put_document(ctx.conn, KIND, document, ctx.now, new=True)
    catalog.set_tags(ctx.conn, arn, request.get("tags", {}))
    apply_job_queue(ctx.writable, document)
    return {"jobQueueName": name, "jobQueueArn": arn}


def update_job_queue(ctx: Context, request: dict) -> dict:
    document = dict(require(ctx, KIND, request["jobQueue"]))
    limits.refuse_unsupported(request, UNSUPPORTED_QUEUE)
    if "schedulingPolicyArn" in request:
        raise ClientException("schedulingPolicyArn: fair-share scheduling policies are not supported yet")
    if "computeEnvironmentOrder" in request:
        document["computeEnvironmentOrder"] = _resolve_order(ctx, request["computeEnvironmentOrder"])
        document["jobQueueType"] = _queue_type(ctx, document["computeEnvironmentOrder"], None)
    if "jobStateTimeLimitActions" in request:
        _check_time_limit_actions(request["jobStateTimeLimitActions"])
        document["jobStateTimeLimitActions"] = request["jobStateTimeLimitActions"]
    for key in ("state", "priority"):
        if key in request:
            document[key] = request[key]
    catalog.put_document(ctx.conn, KIND, document, ctx.now, new=False)
    apply_job_queue(ctx.writable, document)
    return {"jobQueueName": document["jobQueueName"], "jobQueueArn": document["jobQueueArn"]}


def delete_job_queue(ctx: Context, request: dict) -> dict:
    """AWS requires the queue DISABLED first; its remaining jobs are terminated."""
    document = require(ctx, KIND, request["jobQueue"])
    name = document["jobQueueName"]
    if document.get("state") != "DISABLED":
        raise ClientException(f"Cannot delete, jobQueue {name} is not DISABLED")
    scheduler = ctx.writable
    for job_id in [job.id for job in scheduler.jobs.values() if job.queue == name and job.parent_id is None]:
        ctx.actions.extend(scheduler.terminate(job_id, "Job queue deleted", ctx.now))
    catalog.delete_document(ctx.conn, KIND, name)
    catalog.remove_tags(ctx.conn, document["jobQueueArn"], list(catalog.get_tags(ctx.conn, document["jobQueueArn"])))
    if not scheduler.queue_has_live_jobs(name):
        scheduler.remove_queue(name)
    return {}


def get_job_queue_snapshot(ctx: Context, request: dict) -> dict:
    """The first 100 RUNNABLE jobs in dispatch order and the vCPUs the queue's jobs hold now.

    Read from the scheduler, so it runs on the engine thread. Jobs no compute environment can run
    come after the others (they never dispatch). The time a job reached its position is not
    tracked, so ``earliestTimeAtPosition`` is omitted (it is optional).
    """
    name = require(ctx, KIND, request["jobQueue"])["jobQueueName"]
    scheduler = ctx.writable
    queue = scheduler.queues.get(name)
    front: list[str] = []
    if queue is not None:
        front = [key[-1] for key in queue.runnable.islice(0, SNAPSHOT_SIZE)]
        if len(front) < SNAPSHOT_SIZE and queue.parked:
            front += heapq.nsmallest(
                SNAPSHOT_SIZE - len(front), queue.parked, key=lambda job_id: scheduler.jobs[job_id].sort_key()
            )
    return {
        "frontOfQueue": {"jobs": [{"jobArn": ctx.arn("job", job_id)} for job_id in front], "lastUpdatedAt": ctx.now},
        "queueUtilization": {
            "totalCapacityUsage": [{"capacityUnit": "VCPU", "quantity": float(scheduler.vcpus_in_use(name))}],
            "lastUpdatedAt": ctx.now,
        },
    }


def describe_job_queues(ctx: Context, request: dict) -> dict:
    check_reference_count("jobQueues", request.get("jobQueues", []))
    documents = catalog.list_documents(ctx.conn, KIND, request.get("jobQueues", []))
    for document in documents:
        if "jobQueueType" not in document:  # stored by an earlier version
            document["jobQueueType"] = _queue_type(ctx, document.get("computeEnvironmentOrder", []), None)
    return paged_response(documents, request, "jobQueues")

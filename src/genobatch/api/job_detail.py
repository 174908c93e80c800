"""Rendering job rows as AWS Batch ``JobDetail`` and ``JobSummary`` documents."""

from __future__ import annotations

import uuid
from functools import cache

from genobatch.api import log_streams
from genobatch.api.model import service_model
from genobatch.core.status import JobStatus

STATUSES = [status.value for status in JobStatus]
_STATE_FIELDS = (("statusReason", "status_reason"), ("startedAt", "started_at"), ("stoppedAt", "stopped_at"))


def _copy_state_fields(target: dict, state: dict) -> None:
    """statusReason/startedAt/stoppedAt, only when known (AWS omits them until they are)."""
    for key, field in _STATE_FIELDS:
        if state.get(field) is not None:
            target[key] = state[field]


def _with_log_stream(container: dict, row: dict, attempt: int) -> dict:
    """Add ``logStreamName`` (``<definition name>/default/<task id>``, one per attempt) if it logs to one."""
    where = log_streams.location(row, attempt)
    if where is not None:
        container["logStreamName"] = where[1]
    return container


def _ecs_arns(row: dict, attempt: dict, region_account_arn: str) -> dict:
    """``taskArn`` and ``containerInstanceArn`` of an attempt, in the compute environment's cluster.

    Every attempt gets a task ARN once STARTING (API AttemptContainerDetail). genobatch runs no ECS,
    so these are stable names it mints: the task from the job id and attempt number, the container
    instance from the host that ran it.
    """
    ecs = region_account_arn.replace(":batch:", ":ecs:").removesuffix("job/")
    cluster = attempt.get("compute_environment") or "default"
    # The task id that also ends the attempt's log stream name, as on AWS.
    task = log_streams.task_id(row["id"], attempt["number"])
    task = task or uuid.uuid5(uuid.NAMESPACE_URL, f"{row['id']}/{attempt['number']}").hex
    host = uuid.uuid5(uuid.NAMESPACE_DNS, (attempt.get("info") or {}).get("hostname") or "localhost").hex
    return {
        "taskArn": f"{ecs}task/{cluster}/{task}",
        "containerInstanceArn": f"{ecs}container-instance/{cluster}/{host}",
    }


def _attempt_detail(row: dict, attempt: dict, region_account_arn: str) -> dict:
    container = _with_log_stream(_ecs_arns(row, attempt, region_account_arn), row, attempt["number"])
    if attempt.get("exit_code") is not None:
        container["exitCode"] = attempt["exit_code"]
    if attempt.get("reason"):
        container["reason"] = attempt["reason"]
    detail = {"container": container}
    _copy_state_fields(detail, attempt)
    return detail


def _array_properties(row: dict) -> dict | None:
    state, spec = row["state"], row["spec"]
    if state.get("summary") is not None:
        summary = {status: state["summary"].get(status, 0) for status in STATUSES}
        array = {"statusSummary": summary, "size": spec["arrayProperties"]["size"]}
        if state.get("summary_updated_at") is not None:
            array["statusSummaryLastUpdatedAt"] = state["summary_updated_at"]
        return array
    if row["array_index"] is not None:
        return {"index": row["array_index"], "size": spec["arrayProperties"]["size"]}
    return None


def job_detail(row: dict, region_account_arn: str) -> dict:
    """One ``JobDetail``. ``region_account_arn`` is the job ARN prefix ``arn:aws:batch:<r>:<a>:job/``."""
    spec, state = row["spec"], row["state"]
    attempts = state.get("attempts", [])
    finished = [a for a in attempts if a.get("stopped_at") is not None and a.get("started_at") is not None]
    container = dict(spec.get("container", {}))
    if attempts:
        last = attempts[-1]
        _with_log_stream(container, row, last["number"])
        container.update(_ecs_arns(row, last, region_account_arn))
        if last.get("exit_code") is not None:
            container["exitCode"] = last["exit_code"]
        if last.get("reason"):
            container["reason"] = last["reason"]
    detail = {
        "jobArn": region_account_arn + row["id"],
        "jobName": row["name"],
        "jobId": row["id"],
        "jobQueue": spec["jobQueue"],
        "status": row["status"],
        "attempts": [_attempt_detail(row, a, region_account_arn) for a in finished],
        "createdAt": row["created_at"],
        "retryStrategy": spec.get("retryStrategy") or {"attempts": 1},
        "dependsOn": [{"jobId": d[0], "type": d[1]} if d[1] else {"jobId": d[0]} for d in state.get("depends_on", [])]
        if row["array_index"] is not None
        else spec.get("dependsOn", []),
        "jobDefinition": row["definition_arn"],
        "parameters": spec.get("parameters", {}),
        "container": container,
        "tags": spec.get("tags", {}),
        "propagateTags": spec.get("propagateTags", False),
        "platformCapabilities": spec.get("platformCapabilities", ["EC2"]),
        "schedulingPriority": spec.get("schedulingPriority", 0),
        "isCancelled": bool(state.get("is_cancelled")),
        "isTerminated": bool(state.get("is_terminated")),
    }
    if spec.get("timeout"):
        detail["timeout"] = spec["timeout"]
    if row.get("share_identifier"):
        detail["shareIdentifier"] = row["share_identifier"]
    _copy_state_fields(detail, state)
    array = _array_properties(row)
    if array is not None:
        detail["arrayProperties"] = array
    return detail


@cache
def _summary_members() -> frozenset[str]:
    return frozenset(service_model().shape_for("JobSummary").members)


def job_summary(row: dict, region_account_arn: str) -> dict:
    """One ``JobSummary`` for ListJobs."""
    state, spec = row["state"], row["spec"]
    summary = {
        "jobArn": region_account_arn + row["id"],
        "jobId": row["id"],
        "jobName": row["name"],
        "createdAt": row["created_at"],
        "status": row["status"],
        "jobDefinition": row["definition_arn"],
    }
    _copy_state_fields(summary, state)
    # Newer models (botocore 1.44) add these to JobSummary; older ones would not know them.
    for member, key in (("isCancelled", "is_cancelled"), ("isTerminated", "is_terminated")):
        if member in _summary_members():
            summary[member] = bool(state.get(key))
    attempts = state.get("attempts", [])
    if attempts and attempts[-1].get("exit_code") is not None:
        summary["container"] = {"exitCode": attempts[-1]["exit_code"]}
        if attempts[-1].get("reason"):
            summary["container"]["reason"] = attempts[-1]["reason"]
    if state.get("summary") is not None:
        array = _array_properties(row)
        summary["arrayProperties"] = {
            key: array[key] for key in ("size", "statusSummary", "statusSummaryLastUpdatedAt") if key in array
        }
    elif row["array_index"] is not None:
        summary["arrayProperties"] = {"index": row["array_index"], "size": spec["arrayProperties"]["size"]}
    return summary

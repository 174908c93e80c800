"""What a Task state's Batch resources mean on genobatch: requests, results and errors.

``arn:aws:states:::batch:submitJob`` (request/response: the result is SubmitJob's response) and
``arn:aws:states:::batch:submitJob.sync`` (run a job: the result is the DescribeJobs job once it
SUCCEEDED; a FAILED job fails the task with ``States.TaskFailed`` and the job's statusReason as the
cause). In ASL the parameters are SubmitJob's members in PascalCase (``JobName``, ``ContainerOverrides``
with ``Command`` and ``Environment: [{Name, Value}]``) and so are the results (``JobId``,
``Status``): both are translated by walking botocore's ``batch`` model, the schema of record, so no
member list is written here. Map keys (``Parameters``, ``Tags``) are data and keep their case.
"""

from __future__ import annotations

import hashlib
from typing import Any

from botocore.model import Shape

from genobatch.api.model import input_problems, operation_model
from genobatch.api.reviewed import unreviewed

SUBMIT_JOB = "arn:aws:states:::batch:submitJob"
SUBMIT_JOB_SYNC = "arn:aws:states:::batch:submitJob.sync"
RESOURCES = (SUBMIT_JOB, SUBMIT_JOB_SYNC)

#: Tags genobatch puts on every job a workflow submits: the execution, its run (cost per execution
#: is ``genobatch cost --run <state machine>:<execution name>``, see :func:`run_id`) and the task
#: token, the idempotency key of the job.
EXECUTION_TAG = "genobatch:execution"
RUN_TAG = "genobatch:run"
TASK_TAG = "genobatch:workflow-task"
MAX_TAG_VALUE = 256
MAX_TAGS = 50


class TaskError(Exception):
    """The task failed before or without a job: ``error`` (a States or Batch error name) and ``cause``."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


def run_id(execution_arn: str) -> str:
    """The ``genobatch:run`` value of an execution's jobs: ``<state machine>:<execution name>``.

    Execution names are unique per state machine only, so the name alone would merge the costs of
    two state machines' executions of the same name. Neither name may contain ':' (AWS's naming
    rules), so the pair is unambiguous; it is the tail of the execution ARN
    (``arn:aws:states:<region>:<account>:execution:<state machine>:<name>``).
    """
    return ":".join(execution_arn.split(":")[-2:])


def task_tag(token: str) -> str:
    """The tag value naming a task: the token itself, or a digest if it is longer than a tag value may be."""
    if len(token) <= MAX_TAG_VALUE:
        return token
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def _camel(value: Any, shape: Shape, where: str) -> Any:
    """``value`` with structure members renamed to the model's names (matched ignoring case)."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        members = {name.lower(): name for name in shape.members}
        result = {}
        for key, item in value.items():
            name = members.get(str(key).lower())
            if name is None:
                raise TaskError("States.Runtime", f"The field '{key}' is not supported by Step Functions at {where}")
            result[name] = _camel(item, shape.members[name], f"{where}.{key}")
        return result
    if kind == "list" and isinstance(value, list):
        return [_camel(item, shape.member, f"{where}[{i}]") for i, item in enumerate(value)]
    if kind == "map" and isinstance(value, dict):
        return {key: _camel(item, shape.value, f"{where}.{key}") for key, item in value.items()}
    return value


def _pascal(value: Any, shape: Shape) -> Any:
    """A response in the model's names turned into the PascalCase that Step Functions returns."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        result = {}
        for key, item in value.items():
            member = shape.members.get(key)
            result[key[:1].upper() + key[1:]] = _pascal(item, member) if member is not None else item
        return result
    if kind == "list" and isinstance(value, list):
        return [_pascal(item, shape.member) for item in value]
    if kind == "map" and isinstance(value, dict):
        return {key: _pascal(item, shape.value) for key, item in value.items()}
    return value


def submit_request(parameters: Any, execution_arn: str, token: str) -> dict:
    """The SubmitJob request for a Task's resolved ``Parameters``, tagged with the execution and token.

    Raises :class:`TaskError` (``States.Runtime``) for parameters botocore's model rejects, naming each.
    """
    if not isinstance(parameters, dict):
        raise TaskError("States.Runtime", "The Parameters of a batch:submitJob task must be a JSON object")
    request = _camel(parameters, operation_model("SubmitJob").input_shape, "Parameters")
    tags = dict(request.get("tags") or {})
    tags.update({EXECUTION_TAG: execution_arn, RUN_TAG: run_id(execution_arn), TASK_TAG: task_tag(token)})
    if len(tags) > MAX_TAGS:
        raise TaskError("States.Runtime", f"Tags: at most {MAX_TAGS - 3} tags besides genobatch's own three")
    request["tags"] = tags
    problems = input_problems("SubmitJob", request) + unreviewed("SubmitJob", request)
    if problems:
        raise TaskError("States.Runtime", "Invalid SubmitJob parameters: " + "; ".join(problems))
    return request


def submit_output(response: dict) -> dict:
    """``batch:submitJob``'s result: the SubmitJob response (``JobArn``, ``JobId``, ``JobName``)."""
    return _pascal(response, operation_model("SubmitJob").output_shape)


def job_output(job: dict) -> dict:
    """``batch:submitJob.sync``'s result: the DescribeJobs job, in PascalCase."""
    return _pascal(job, operation_model("DescribeJobs").output_shape.members["jobs"].member)


def job_failure(job: dict) -> tuple[str, str]:
    """The task error of a FAILED job: ``States.TaskFailed`` with the job's statusReason as the cause."""
    return "States.TaskFailed", job.get("statusReason") or f"Batch job {job.get('jobId')} FAILED"


def unsupported_resources(raw: Any, path: str = "") -> list[str]:
    """Every Task whose Resource genobatch cannot run, as ``'<resource>' at /States/<name>/Resource``."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        return problems
    for name, state in (raw.get("States") or {}).items():
        if not isinstance(state, dict):
            continue
        where = f"{path}/States/{name}"
        resource = state.get("Resource")
        if state.get("Type") == "Task" and isinstance(resource, str) and resource not in RESOURCES:
            problems.append(f"'{resource}' at {where}/Resource")
        for index, branch in enumerate(state.get("Branches") or []):
            problems += unsupported_resources(branch, f"{where}/Branches[{index}]")
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict):
                problems += unsupported_resources(state[key], f"{where}/{key}")
    return problems

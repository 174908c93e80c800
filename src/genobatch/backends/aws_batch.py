"""The AWS Batch engine: a compute environment whose attempts run on a (real or compatible) AWS Batch queue.

Configured by the compute environment's tags (the wire contract, see
:mod:`genobatch.backends.registry`): ``genobatch:aws-batch-job-queue`` (name or ARN of the remote
queue, required), ``genobatch:aws-batch-region``, ``genobatch:aws-batch-endpoint`` (any endpoint
speaking the AWS Batch API, e.g. another genobatch server) and ``genobatch:aws-profile``.
Credentials come from the standard AWS chain of the server process (a boto3 Session).

How an attempt maps onto AWS Batch:

* **Job definitions** are registered remotely on demand, one per local definition and content:
  ``gb-<local name>-<revision>-<hash of the container properties>``. An ACTIVE one of that name is
  reused (DescribeJobDefinitions), so restarts and several servers do not register again. Command,
  environment and resources travel as ``containerOverrides`` of each SubmitJob, so jobs that differ
  only in those share the definition.
* **SubmitJob** names the remote job after the attempt (``spec.name``), with ``retryStrategy``
  attempts 1 (genobatch retries itself, with ``evaluateOnExit``) and a backstop timeout beyond
  genobatch's own timer. AWS reserves the ``AWS_BATCH_`` prefix and sets its own values (remote id,
  no array index for a single job), so genobatch's values travel as ``GENOBATCH_AWS_BATCH_*`` and
  a ``/bin/sh`` prologue restores them under their names: the job sees what it sees locally.
* **The SubmitJob quota** (50 per second per account) is respected by a client-side token bucket,
  and a throttled call (HTTP 429 ``TooManyRequestsException``, or another throttling code) is
  backed off and retried, never reported as a failure. boto3's own retries are off for SubmitJob:
  it would resend a request whose answer was lost, which may submit it twice; such a submission is
  reported :class:`~genobatch.backends.remote.Uncertain` and looked up by name instead.
* **States** come from DescribeJobs, 100 ids per call; a job held RUNNABLE for a
  ``MISCONFIGURATION:`` reason can never run there: it ends (final) and is cancelled remotely.
* **Logs** are read from CloudWatch Logs (``/aws/batch/job``, the job's ``logStreamName``) into
  ``attempt_dir/output.log`` (:mod:`genobatch.backends.aws_batch_logs`: the logs of attempts that
  ended in one poll are read 100 streams a call; progress is kept next to the log, so a restart
  does not copy lines twice).
* **Cost**: the instance type and purchase option of the remote queue's first compute environment
  are reported with each attempt (``instance_type``, ``purchase_option``, ``region``), and
  :func:`genobatch.run.remote_billing_specs` prices the compute environment by them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from genobatch.api.rate_limit import TokenBucket
from genobatch.backends.aws_batch_logs import LogCopier
from genobatch.backends.base import AttemptSpec
from genobatch.backends.remote import (
    Refused,
    RemoteEngine,
    RemoteState,
    RemoteUnavailable,
    SubmitResult,
    Submitted,
    Uncertain,
)

log = logging.getLogger("genobatch.backends.aws_batch")

QUEUE_TAG = "genobatch:aws-batch-job-queue"
REGION_TAG = "genobatch:aws-batch-region"
ENDPOINT_TAG = "genobatch:aws-batch-endpoint"
PROFILE_TAG = "genobatch:aws-profile"

SUBMIT_TPS = 50.0  # AWS Batch's SubmitJob quota per account and region
DESCRIBE_BATCH = 100  # DescribeJobs takes at most 100 ids
TERMINATE_REASON = "Terminated by genobatch"
TIMEOUT_REASON = "Job attempt duration exceeded timeout"
#: Beyond genobatch's own timer and its 30 s SIGKILL grace: the remote's timeout is only a backstop.
TIMEOUT_BACKSTOP_S = 90
#: Overrides a job can carry; every other container property goes into the remote definition.
OVERRIDDEN = ("command", "environment", "resourceRequirements", "vcpus", "memory", "instanceType")
#: Set by genobatch to imitate ECS; the remote platform sets its own true values.
PLATFORM_VARIABLES = ("AWS_EXECUTION_ENV", "AWS_REGION", "AWS_DEFAULT_REGION")
RESERVED_PREFIX = "AWS_BATCH_"
CARRIED_PREFIX = "GENOBATCH_"
THROTTLING = {"TooManyRequestsException", "ThrottlingException", "Throttling", "RequestLimitExceeded"}
CREDENTIAL_ERRORS = {
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "AccessDeniedException",
    "AccessDenied",
    "ExpiredTokenException",
    "IncompleteSignature",
    "MissingAuthenticationToken",
}
_RESOURCE_WORDS = re.compile(r"\b(memory|vcpus?|gpus?|resource)", re.IGNORECASE)
#: SubmitJob refusals that are about the remote queue or a definition deregistered there, not the job.
_QUEUE_PROBLEM = re.compile(r"job ?queue.*(does not exist|disabled|not found|invalid)")
_DEFINITION_GONE = re.compile(r"job ?definition.*(does not exist|inactive|not found)")
_NOT_SENT = (EndpointConnectionError, ConnectTimeoutError, NoCredentialsError)
_QUEUED = {"SUBMITTED", "PENDING", "RUNNABLE", "STARTING"}


def engine_from_tags(compute_environment: str, tags: Mapping[str, str]) -> AwsBatchEngine:
    """The engine a compute environment's tags describe; ``ValueError`` naming the bad tag.

    Makes no network call (the API calls it to validate a new compute environment).
    """
    queue = (tags.get(QUEUE_TAG) or "").strip()
    if not queue:
        raise ValueError(
            f"{QUEUE_TAG} is required for genobatch:backend aws-batch (the remote job queue's name or ARN)"
        )
    if not re.fullmatch(
        r"[A-Za-z0-9_-]{1,128}|arn:aws[a-z-]*:batch:[a-z0-9-]+:\d{12}:job-queue/[A-Za-z0-9_-]{1,128}", queue
    ):
        raise ValueError(f"{QUEUE_TAG}: {queue[:80]!r} is not a job queue name (1-128 letters, digits, - and _) or ARN")
    endpoint = (tags.get(ENDPOINT_TAG) or "").strip() or None
    if endpoint is not None:
        parsed = urlparse(endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"{ENDPOINT_TAG}: {endpoint[:80]!r} is not an http(s) URL")
    region = (tags.get(REGION_TAG) or "").strip() or None
    if region is not None and not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region):
        raise ValueError(f"{REGION_TAG}: {region[:40]!r} is not an AWS region name (e.g. us-east-1)")
    profile = (tags.get(PROFILE_TAG) or "").strip() or None
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
    except ProfileNotFound:
        raise ValueError(f"{PROFILE_TAG}: no AWS profile {profile!r} in this server's AWS configuration") from None
    if session.region_name is None:
        raise ValueError(f"{REGION_TAG} is required: this server's AWS configuration names no default region")
    return AwsBatchEngine(compute_environment, queue, session=session, endpoint=endpoint)


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _error_text(error: Exception) -> str:
    if isinstance(error, ClientError):
        return f"{_error_code(error)}: {error.response.get('Error', {}).get('Message', '')}"
    return str(error)


def definition_body(container: Mapping) -> dict:
    """The container properties that go into the remote job definition (not the per-job overrides)."""
    members = _container_members()
    return {key: value for key, value in container.items() if key in members and key not in OVERRIDDEN}


@functools.cache
def _container_members() -> frozenset[str]:
    model = botocore.session.get_session().get_service_model("batch")
    return frozenset(model.shape_for("ContainerProperties").members)


def remote_definition_name(local_definition: str, body: Mapping) -> str:
    """``gb-<name>-<revision>-<content hash>``: stable for the same definition and content."""
    tail = local_definition.rsplit("/", 1)[-1]  # an ARN's "job-definition/name:revision", or "name:revision"
    name, _, revision = tail.partition(":")
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:12]
    stem = re.sub(r"[^A-Za-z0-9_-]", "-", name or "job")[:96]
    return f"gb-{stem}-{revision or '0'}-{digest}"


def container_overrides(spec: AttemptSpec) -> dict:
    """Command, environment and resources of one attempt, as SubmitJob's ``containerOverrides``."""
    own = {item["name"] for item in spec.container.get("environment", [])}
    environment, carried = [], []
    for name, value in sorted(spec.environment.items()):
        if name.startswith(RESERVED_PREFIX):
            environment.append({"name": CARRIED_PREFIX + name, "value": value})
            carried.append(name)
        elif name not in PLATFORM_VARIABLES or name in own:
            environment.append({"name": name, "value": value})
    resources = [{"type": "VCPU", "value": str(spec.vcpus)}, {"type": "MEMORY", "value": str(spec.memory_mib)}]
    if spec.gpu_count:
        resources.append({"type": "GPU", "value": str(spec.gpu_count)})
    overrides: dict = {"environment": environment, "resourceRequirements": resources}
    if spec.command:
        # The prologue gives the job genobatch's AWS_BATCH_* values (its id, attempt, array index).
        exports = "; ".join(f'export {name}="${CARRIED_PREFIX}{name}"' for name in carried)
        overrides["command"] = ["/bin/sh", "-c", f'{exports}; exec "$@"', "genobatch", *spec.command]
    return overrides


def submit_request(spec: AttemptSpec, queue: str, definition: str) -> dict:
    """SubmitJob's parameters for one attempt on the remote ``queue`` with the remote ``definition``."""
    request = {
        "jobName": spec.name,
        "jobQueue": queue,
        "jobDefinition": definition,
        "containerOverrides": container_overrides(spec),
        "retryStrategy": {"attempts": 1},  # genobatch retries itself, with evaluateOnExit
        "tags": {"genobatch:job-id": spec.job_id, "genobatch:attempt": str(spec.attempt)},
    }
    if spec.timeout_s:
        request["timeout"] = {"attemptDurationSeconds": max(60, int(spec.timeout_s) + TIMEOUT_BACKSTOP_S)}
    return request


class AwsBatchEngine(RemoteEngine):
    """Runs attempts as jobs on a remote AWS Batch queue (see the module docstring)."""

    kind = "aws-batch"
    poll_interval_s = 2.0
    batch_size = 500

    def __init__(
        self,
        compute_environment: str,
        queue: str,
        *,
        session: boto3.Session,
        endpoint: str | None = None,
        logs_endpoint: str | None = None,
        submit_tps: float = SUBMIT_TPS,
        submit_workers: int = 8,
    ) -> None:
        self.compute_environment = compute_environment
        self.queue = queue
        self.endpoint = endpoint
        self.region = session.region_name
        where = endpoint or f"AWS Batch in {self.region}"
        self.where = f"remote queue {queue} at {where}"
        # SubmitJob: no SDK retries (a resent SubmitJob may run twice); everything else is
        # idempotent or read-only and gets boto3's standard retries.
        single = Config(connect_timeout=5, read_timeout=30, retries={"total_max_attempts": 1}, max_pool_connections=32)
        retried = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "total_max_attempts": 4})
        self._submit_client = session.client("batch", endpoint_url=endpoint, config=single)
        self._client = session.client("batch", endpoint_url=endpoint, config=retried)
        # A genobatch endpoint serves CloudWatch Logs too; AWS_ENDPOINT_URL_CLOUDWATCH_LOGS overrides.
        logs_at = logs_endpoint or os.environ.get("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS") or endpoint
        self._logs = session.client("logs", endpoint_url=logs_at, config=retried)
        # One second's worth of burst, as AWS's own bucket allows: the slots lost while the backend
        # polls between batches are caught up at once instead of lowering the rate.
        self._bucket = TokenBucket(submit_tps)
        self._workers = submit_workers
        self._lock = threading.Lock()
        self._definitions: dict[str, str] = {}  # remote definition name -> "name:revision" there
        self._placement: dict | None = None  # instance type and purchase option of the remote queue
        self._log_copier = LogCopier(
            lambda operation, **params: self._call(self._logs, operation, **params), self._unavailable
        )
        self.throttled = 0  # throttling answers seen (and retried): for benchmarks and tests
        self._throttle_logged = -1e9
        self._closed = threading.Event()

    # --------------------------------------------------------------- calls
    def _call(self, client, operation: str, pace: Callable[[], None] | None = None, **params) -> dict:
        """One API call; throttling is retried with backoff, the rest raise as botocore raises.

        ``pace`` runs before every try, retries included (the SubmitJob bucket: a retry is a call
        against the quota like any other).
        """
        delay = 0.05
        while True:
            if pace is not None:
                pace()
            try:
                return getattr(client, operation)(**params)
            except ClientError as error:
                if _error_code(error) not in THROTTLING or self._closed.is_set():
                    raise
            self._count_throttle(operation)
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 5.0)

    def _pace(self) -> None:
        """Wait for this call's slot under the SubmitJob quota."""
        wait = self._bucket.reserve()
        if wait > 0:
            time.sleep(wait)

    def _count_throttle(self, operation: str) -> None:
        with self._lock:
            self.throttled += 1
            now = time.monotonic()
            due = now >= self._throttle_logged + 10.0
            if due:
                self._throttle_logged = now
        if due:  # at most one line per 10 s: throttling is expected at the quota
            log.info("%s: %s throttled; %d throttled calls so far, all retried", self.where, operation, self.throttled)

    def _unavailable(self, error: Exception, doing: str) -> RemoteUnavailable:
        if isinstance(error, ClientError) and _error_code(error) in CREDENTIAL_ERRORS:
            return RemoteUnavailable(f"{self.where}: credentials refused while {doing}: {_error_text(error)}")
        if isinstance(error, NoCredentialsError):
            return RemoteUnavailable(f"{self.where}: no AWS credentials found in this server's environment")
        return RemoteUnavailable(f"{self.where}: {doing} failed: {_error_text(error)}")

    def _read(self, operation: str, doing: str, **params) -> dict:
        """A read-only or idempotent call; any failure means the engine is unavailable."""
        try:
            return self._call(self._client, operation, **params)
        except (ClientError, BotoCoreError) as error:
            raise self._unavailable(error, doing) from None

    # --------------------------------------------------------------- probe
    def probe(self) -> None:
        """The remote queue exists, is VALID and ENABLED, and the credentials work."""
        queues = self._read("describe_job_queues", "describing the job queue", jobQueues=[self.queue])["jobQueues"]
        if not queues:
            raise RemoteUnavailable(f"{self.where}: the remote job queue does not exist")
        queue = queues[0]
        if queue.get("state") != "ENABLED" or queue.get("status") not in ("VALID", "UPDATING"):
            reason = queue.get("statusReason") or ""
            raise RemoteUnavailable(
                f"{self.where}: the remote job queue is {queue.get('state')}/{queue.get('status')} {reason}".strip()
            )
        if self._placement is None:
            self._placement = self._read_placement(queue)

    def _read_placement(self, queue: dict) -> dict:
        order = sorted(queue.get("computeEnvironmentOrder", []), key=lambda item: item.get("order", 0))
        if not order:
            return {}
        first = order[0]["computeEnvironment"]
        found = self._read(
            "describe_compute_environments", "describing its compute environment", computeEnvironments=[first]
        )["computeEnvironments"]
        if not found:
            return {}
        resources = found[0].get("computeResources") or {}
        types = [t for t in resources.get("instanceTypes", []) if t != "optimal"]
        purchase = "spot" if resources.get("type") in ("SPOT", "FARGATE_SPOT") else "on-demand"
        placement = {"remote_compute_environment": found[0].get("computeEnvironmentName", first)}
        placement["purchase_option"] = purchase
        placement["region"] = self.region
        if types:
            placement["instance_type"] = types[0]
        return placement

    def _ensure_probed(self) -> None:
        if self._placement is None:
            self.probe()

    # --------------------------------------------------------------- definitions
    def _definition(self, spec: AttemptSpec) -> str | Refused | None:
        """The remote definition for this attempt (``name:revision``), registered if none is ACTIVE.

        A :class:`Refused` when the remote refuses to register it (the job's problem), None when
        the remote could not be asked (nothing happened; tried again later).
        """
        body = definition_body(spec.container)
        name = remote_definition_name(spec.job_definition or "job", body)
        with self._lock:
            known = self._definitions.get(name)
        if known is not None:
            return known
        try:
            found = self._call(self._client, "describe_job_definitions", jobDefinitionName=name, status="ACTIVE")
            revisions = [d["revision"] for d in found.get("jobDefinitions", []) if d.get("status") == "ACTIVE"]
            if revisions:
                reference = f"{name}:{max(revisions)}"
            else:
                registered = self._call(
                    self._client,
                    "register_job_definition",
                    jobDefinitionName=name,
                    type="container",
                    containerProperties=body,
                    tags={"genobatch:definition": spec.job_definition or ""},
                )
                reference = f"{name}:{registered['revision']}"
                log.info("registered remote job definition %s for %s", reference, spec.job_definition)
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if _error_code(error) in CREDENTIAL_ERRORS or status >= 500:
                return None
            return Refused(f"remote job definition refused: {_error_text(error)}")
        except BotoCoreError:
            return None  # reading and registering are safe to redo: nothing is lost
        with self._lock:
            self._definitions[name] = reference
        return reference

    # --------------------------------------------------------------- submit
    def submit(self, specs: Sequence[AttemptSpec]) -> list[SubmitResult]:
        self._ensure_probed()
        # Each distinct definition is looked up (or registered) once, before the parallel
        # submissions: concurrent first uses would register it several times.
        definitions: list[str | Refused | None] = []
        resolved: dict[tuple[str, str], str | Refused | None] = {}
        for spec in specs:
            key = (spec.job_definition, json.dumps(definition_body(spec.container), sort_keys=True))
            if key not in resolved:
                resolved[key] = self._definition(spec)
            definitions.append(resolved[key])
        results: list[SubmitResult | None] = [None] * len(specs)
        unreachable = threading.Event()  # stop sending once one call could not connect

        def one(index: int) -> None:
            definition = definitions[index]
            if unreachable.is_set() or definition is None:
                return
            result = definition if isinstance(definition, Refused) else self._submit_one(specs[index], definition)
            if result is None:
                unreachable.set()
            results[index] = result

        with ThreadPoolExecutor(max_workers=min(self._workers, max(1, len(specs)))) as pool:
            list(pool.map(one, range(len(specs))))
        if all(result is None for result in results):
            raise RemoteUnavailable(f"{self.where}: cannot be reached to submit")
        return [result or Uncertain("not sent: the remote engine could not be reached") for result in results]

    def _submit_one(self, spec: AttemptSpec, definition: str) -> SubmitResult | None:
        """One SubmitJob; None when nothing was sent (the engine could not be reached)."""
        request = submit_request(spec, self.queue, definition)
        try:
            answer = self._call(self._submit_client, "submit_job", pace=self._pace, **request)
        except _NOT_SENT:
            return None
        except (ReadTimeoutError, ConnectionClosedError) as error:
            return Uncertain(f"SubmitJob {spec.name}: {error}")
        except ClientError as error:
            code, status = _error_code(error), error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in CREDENTIAL_ERRORS:
                return None
            if status >= 500:  # the remote failed on its side: it may or may not have taken the job
                return Uncertain(f"SubmitJob {spec.name}: {_error_text(error)}")
            message = error.response.get("Error", {}).get("Message", "")
            lowered = message.lower()
            if _QUEUE_PROBLEM.search(lowered):
                self._placement = None  # the configuration's problem, not the job's: probe shows it
                return None
            if _DEFINITION_GONE.search(lowered):
                with self._lock:  # deregistered remotely meanwhile: register again next time
                    self._definitions.clear()
                return None
            return Refused(f"remote AWS Batch refused the job: {message}", bool(_RESOURCE_WORDS.search(message)))
        except BotoCoreError as error:
            return Uncertain(f"SubmitJob {spec.name}: {error}")
        return Submitted(answer["jobId"], {"remote_job_id": answer["jobId"], **(self._placement or {})})

    # --------------------------------------------------------------- states
    def states(self, handles: Sequence[str]) -> dict[str, RemoteState]:
        found: dict[str, RemoteState] = {}
        misconfigured: list[str] = []
        for first in range(0, len(handles), DESCRIBE_BATCH):
            chunk = list(handles[first : first + DESCRIBE_BATCH])
            for job in self._read("describe_jobs", "DescribeJobs", jobs=chunk)["jobs"]:
                state = self._state(job)
                found[state.handle] = state
                if state.final and job.get("status") in _QUEUED:
                    misconfigured.append(state.handle)
        if misconfigured:
            self._terminate(misconfigured, "genobatch: the job can never run on this queue")
        ended = {h: s.info["log_stream"] for h, s in found.items() if s.phase == "ended" and "log_stream" in s.info}
        if ended:
            self._log_copier.prefetch(ended)  # their logs in a few calls, before collect_log asks
        return found

    def _state(self, job: dict) -> RemoteState:
        status = job.get("status", "")
        container = job.get("container") or {}
        info = {"remote_job_id": job["jobId"], **(self._placement or {})}
        if container.get("logStreamName"):
            info["log_stream"] = container["logStreamName"]
        reason = job.get("statusReason")
        if status in _QUEUED:
            if status == "RUNNABLE" and (reason or "").startswith("MISCONFIGURATION:"):
                return RemoteState(job["jobId"], "ended", reason=reason, status_reason=reason, final=True, info=info)
            return RemoteState(job["jobId"], "queued", info=info)
        started, stopped = job.get("startedAt"), job.get("stoppedAt")
        if status == "RUNNING":
            return RemoteState(job["jobId"], "running", started_at_ms=started or _now_ms(), info=info)
        usage = {"realtime_ms": stopped - started} if started and stopped else {}
        return RemoteState(
            job["jobId"],
            "ended",
            started_at_ms=started,
            stopped_at_ms=stopped,
            exit_code=container.get("exitCode"),
            reason=container.get("reason"),
            status_reason=reason,
            timed_out=reason == TIMEOUT_REASON,
            usage=usage,
            info=info,
        )

    # --------------------------------------------------------------- find
    def find(self, names: Sequence[str]) -> dict[str, str]:
        """ListJobs on the remote queue with the JOB_NAME filter (every status), one prefix per job.

        Attempt names are ``gb_<job id>_...``, so the attempts (and array children) of one job
        share a prefix: one paged listing finds all of them.
        """
        wanted = set(names)
        prefixes = sorted({"_".join(name.split("_")[:2]) + "_*" for name in wanted})
        found: dict[str, str] = {}
        for prefix in prefixes:
            token = None
            while True:
                params = {
                    "jobQueue": self.queue,
                    "filters": [{"name": "JOB_NAME", "values": [prefix]}],
                    "maxResults": 100,
                }
                if token:
                    params["nextToken"] = token
                page = self._read("list_jobs", "ListJobs", **params)
                for summary in page.get("jobSummaryList", []):
                    if summary["jobName"] in wanted:
                        found.setdefault(summary["jobName"], summary["jobId"])
                token = page.get("nextToken")
                if not token:
                    break
        return found

    # --------------------------------------------------------------- stops
    def signal(self, handles: Sequence[str]) -> None:
        """TerminateJob: AWS sends SIGTERM, then SIGKILL 30 s later; a queued job is cancelled."""
        self._terminate(handles, TERMINATE_REASON)

    def cancel(self, handles: Sequence[str]) -> None:
        """TerminateJob again (a no-op for an ended job); AWS's own grace ends the container."""
        self._terminate(handles, TERMINATE_REASON)

    def _terminate(self, handles: Sequence[str], reason: str) -> None:
        for handle in handles:
            try:
                self._call(self._client, "terminate_job", jobId=handle, reason=reason)
            except ClientError as error:
                if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) < 500:
                    log.warning("TerminateJob %s refused: %s", handle, _error_text(error))
                    continue
                raise self._unavailable(error, "TerminateJob") from None
            except BotoCoreError as error:
                raise self._unavailable(error, "TerminateJob") from None

    # --------------------------------------------------------------- logs
    def collect_log(self, handle: str, state: RemoteState, attempt_dir: str) -> None:
        """Append the job's new CloudWatch Logs events to ``attempt_dir/output.log``."""
        stream = state.info.get("log_stream")
        if stream:
            self._log_copier.copy(handle, stream, state.phase == "ended", attempt_dir)

    def close(self) -> None:
        if self.throttled:
            log.info("%s: %d throttled calls in all, all retried", self.where, self.throttled)
        self._closed.set()
        for client in (self._submit_client, self._client, self._logs):
            client.close()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000

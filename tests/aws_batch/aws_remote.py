"""Helpers for the AWS Batch engine tests: engines pointed at a stand-in server, attempts as the engine builds them."""

from __future__ import annotations

import queue
import time
import uuid
from pathlib import Path

import boto3
from harness import Server

from genobatch.backends.aws_batch import AwsBatchEngine
from genobatch.backends.base import AttemptSpec, attempt_name


def session_for(server: Server) -> boto3.Session:
    return boto3.Session(
        aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key, region_name=server.region
    )


def make_engine(server: Server, queue: str, **options) -> AwsBatchEngine:
    return AwsBatchEngine("local-ce", queue, session=session_for(server), endpoint=server.endpoint, **options)


def attempt(
    tmp_path: Path, command: list[str], *, attempt_no: int = 1, job_id: str | None = None, **fields
) -> AttemptSpec:
    """An attempt as the engine builds it: effective container, genobatch's AWS_BATCH_* environment."""
    job_id = job_id or str(uuid.uuid4())
    container = {"image": "busybox", "command": command, **fields.pop("container", {})}
    environment = {
        "AWS_BATCH_JOB_ID": job_id,
        "AWS_BATCH_JOB_ATTEMPT": str(attempt_no),
        "AWS_BATCH_JQ_NAME": "local-queue",
        "AWS_BATCH_CE_NAME": "local-ce",
        "AWS_REGION": "us-east-1",
        **fields.pop("environment", {}),
    }
    directory = tmp_path / job_id.replace(":", "_") / str(attempt_no)
    values = {
        "vcpus": 1,
        "memory_mib": 64,
        "job_definition": "arn:aws:batch:us-east-1:000000000000:job-definition/echoer:3",
        **fields,
    }
    return AttemptSpec(
        job_id=job_id,
        attempt=attempt_no,
        command=tuple(command),
        environment=environment,
        attempt_dir=str(directory),
        name=attempt_name(job_id, attempt_no),
        container=container,
        **values,
    )


def wait_state(engine: AwsBatchEngine, handle: str, phases=("ended",), timeout: float = 60):
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = engine.states([handle]).get(handle)
        if state is not None and state.phase in phases:
            return state
        time.sleep(0.2)
    raise AssertionError(f"{handle} not in {phases} after {timeout}s: {state}")


def remote_jobs_named(server: Server, queue: str, name: str) -> list[dict]:
    """Every remote job with this exact name, whatever its status."""
    client = server.client()
    pages = client.get_paginator("list_jobs").paginate(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [name]}])
    return [job for page in pages for job in page["jobSummaryList"] if job["jobName"] == name]


class Events:
    """The sink: every event, in order, with a way to wait for one."""

    def __init__(self) -> None:
        self.inbox: queue.Queue = queue.Queue()
        self.seen: list = []

    def __call__(self, event) -> None:
        self.inbox.put(event)

    def wait(self, kind, job_id: str | None = None, timeout: float = 60, where=lambda _event: True):
        def matches(event) -> bool:
            return (
                isinstance(event, kind)
                and (job_id is None or getattr(event, "job_id", None) == job_id)
                and where(event)
            )

        deadline = time.monotonic() + timeout
        for event in self.seen:
            if matches(event):
                return event
        while time.monotonic() < deadline:
            try:
                event = self.inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen.append(event)
            if matches(event):
                return event
        raise AssertionError(f"no {kind.__name__} for {job_id} in {timeout}s; seen {self.seen}")

    def of(self, job_id: str) -> list:
        return [type(e).__name__ for e in self.seen if getattr(e, "job_id", None) == job_id]

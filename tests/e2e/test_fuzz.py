"""A model-driven fuzzer against the real server: one bad request must never harm other work.

Every operation in botocore's Batch model, and the three CloudWatch Logs operations served
on ``POST /``, gets requests generated from its input shape and then broken on purpose: wrong types, unknown
members, lone surrogates and NUL, numbers and strings past the model's bounds, missing required
members, invalid or non-object bodies. Around them go wrong methods, unknown paths, bad query
strings, the native endpoints with bad parameters, unsigned and badly signed requests, and oversize
bodies. Thousands of requests, signed with botocore's SigV4 signer over one kept-alive connection,
from a seeded RNG (``GENOBATCH_FUZZ_SEED``, ``GENOBATCH_FUZZ_REQUESTS``) so a failure reproduces.

What is asserted, and why it is honest:

* no answer is a 5xx, and every error answer is in AWS's JSON error shape (``x-amzn-ErrorType``
  header equal to the body's ``__type``, a ``message``);
* a request to an operation that can change state is only ever sent broken in a way the model
  rules out (never a valid-but-harmful one), and each must be refused (4xx): an accepted one is a
  failure of its own, not something the snapshot check could hide;
* read-only operations (``Describe*``, ``List*``, ``Get*``, and the logs ones) also get *valid*
  wild input (any unicode, huge strings and numbers, negative numbers, forged tokens), which may
  succeed;
* afterwards the state read back through the API (compute environments, queues, definitions, jobs,
  tags) equals the snapshot taken before, and the server's RSS has not grown by the oversize
  bodies it was sent.
"""

from __future__ import annotations

import os
import time
from collections import Counter

import psutil
import pytest
from harness import Server, wait_for
from model_fuzzing import LOGS_OPERATIONS, Fuzzer, Probe
from raw_http import RawClient, Reply, send_oversize

from genobatch.api.model import OPERATIONS

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("GENOBATCH_FUZZ_SEED", "20261129"))
REQUESTS = int(os.environ.get("GENOBATCH_FUZZ_REQUESTS", "3000"))
TIME_BUDGET_S = 120  # a bound on the run; the count is normally reached well before
# --------------------------------------------------------------------------- state


def snapshot(batch) -> dict:
    """Everything a refused request could have changed, read back through the API."""
    ces = batch.describe_compute_environments()["computeEnvironments"]
    queues = batch.describe_job_queues()["jobQueues"]
    definitions = batch.describe_job_definitions()["jobDefinitions"]
    job_ids = []
    for queue in queues:
        for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"):
            listed = batch.list_jobs(jobQueue=queue["jobQueueName"], jobStatus=status)["jobSummaryList"]
            job_ids += [job["jobId"] for job in listed]
    jobs = batch.describe_jobs(jobs=job_ids)["jobs"] if job_ids else []
    arns = [r["computeEnvironmentArn"] for r in ces] + [r["jobQueueArn"] for r in queues]
    arns += [d["jobDefinitionArn"] for d in definitions] + [j["jobArn"] for j in jobs]
    tags = {arn: batch.list_tags_for_resource(resourceArn=arn)["tags"] for arn in arns}
    return {"ces": ces, "queues": queues, "definitions": definitions, "jobs": jobs, "tags": tags}


@pytest.fixture(scope="module")
def seeded(genobatch_server: Server, batch) -> dict[str, str]:
    """A compute environment that runs nothing (DISABLED), a queue, a definition and one job,
    which therefore stays RUNNABLE: state that stands still unless a request changes it."""
    ce = batch.create_compute_environment(
        computeEnvironmentName="fuzz-ce", type="UNMANAGED", state="DISABLED", tags={"t": "1"}
    )
    queue = batch.create_job_queue(
        jobQueueName="fuzz-q",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "fuzz-ce"}],
        tags={"t": "2"},
    )
    definition = batch.register_job_definition(
        jobDefinitionName="fuzz-def",
        type="container",
        containerProperties={"image": "none", "command": ["true"], "vcpus": 1, "memory": 64},
        tags={"t": "3"},
    )
    job = batch.submit_job(jobName="fuzz-job", jobQueue="fuzz-q", jobDefinition="fuzz-def", tags={"t": "4"})
    deadline = time.monotonic() + 30
    while batch.describe_jobs(jobs=[job["jobId"]])["jobs"][0]["status"] != "RUNNABLE":
        assert time.monotonic() < deadline, "seed job never became RUNNABLE"
        time.sleep(0.05)
    # And one job that has run and ended, so the logs operations have a stream and lines to page.
    batch.create_compute_environment(computeEnvironmentName="fuzz-run-ce", type="UNMANAGED")
    batch.create_job_queue(
        jobQueueName="fuzz-run-q",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "fuzz-run-ce"}],
    )
    done = batch.submit_job(
        jobName="fuzz-done",
        jobQueue="fuzz-run-q",
        jobDefinition="fuzz-def",
        containerOverrides={"command": ["sh", "-c", "for i in 1 2 3 4 5 6; do echo line $i; done"]},
    )
    stream = wait_for(batch, done["jobId"], ("SUCCEEDED",))["container"]["logStreamName"]
    return {
        "ce": ce["computeEnvironmentArn"],
        "ce_name": "fuzz-ce",
        "queue": queue["jobQueueArn"],
        "queue_name": "fuzz-q",
        "definition": definition["jobDefinitionArn"],
        "definition_name": "fuzz-def",
        "job": job["jobId"],
        "job_arn": job["jobArn"],
        "log_group": "/aws/batch/job",
        "log_stream": stream,
    }


def _problems(probe: Probe, reply: Reply) -> list[str]:
    problems = []
    if reply.status >= 500:
        problems.append(f"{reply.status}")
    if reply.status >= 400:
        problems += reply.aws_error_problems()
    elif probe.must_refuse:
        problems.append(f"accepted with {reply.status}")
    return problems


def test_fuzz_every_operation_refuses_bad_input_without_5xx_or_state_change(genobatch_server, batch, seeded):
    before = snapshot(batch)
    time.sleep(0.5)
    assert snapshot(batch) == before, "the seeded state is not stable on its own; the comparison would mean nothing"
    process = psutil.Process(genobatch_server.proc.pid)
    rss_before = process.memory_info().rss

    signed, unsigned = RawClient(genobatch_server), RawClient(genobatch_server, sign=False)
    logs = RawClient(genobatch_server, service="logs")
    fuzzer = Fuzzer(SEED, seeded)
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    labels: Counter[str] = Counter()
    started = time.monotonic()
    sent = 0
    try:
        for probe in fuzzer.probes():
            if sent >= REQUESTS or time.monotonic() - started > TIME_BUDGET_S:
                break
            client = (logs if probe.service == "logs" else signed) if probe.signed else unsigned
            reply = client.send(probe.method, probe.path, probe.body, query=probe.query, headers=probe.headers)
            sent += 1
            statuses[reply.status] += 1
            labels[probe.label.split(":")[0].split(" ")[0]] += 1
            problems = _problems(probe, reply)
            if problems:
                failures.append(
                    f"#{sent} {probe.method} {probe.path[:80]}?{probe.query[:60]} ({probe.label}) body "
                    f"{probe.body[:120]!r}: {'; '.join(problems)}; answer {reply.status} {reply.body[:200]!r}"
                )
        # Oversize bodies among them: announced and chunked, to each kind of route.
        for path in ("/v1/submitjob", "/v1/tags/x", "/", "/genobatch/v1/runs"):
            for chunked in (False, True):
                answer = send_oversize(genobatch_server, path, 32 << 20, chunked=chunked)
                if not answer.startswith(b"HTTP/1.1 413"):
                    failures.append(f"oversize to {path} (chunked={chunked}) answered {answer[:200]!r}")
    finally:
        for client in (signed, unsigned, logs):
            client.close()

    grown = process.memory_info().rss - rss_before
    report = f"seed {SEED}, {sent} requests, statuses {dict(statuses)}, server RSS {grown / 2**20:+.1f} MiB"
    print(report)
    assert not failures, f"{report}\n" + "\n".join(failures[:30])
    assert sent >= min(REQUESTS, 1000), f"only {sent} requests within {TIME_BUDGET_S}s: {report}"
    # Every operation in the model was reached, and so were the other kinds of probe.
    assert set(OPERATIONS) | set(LOGS_OPERATIONS) | {"unknown", "native", "unsigned", "bad"} <= set(labels), sorted(
        labels
    )
    assert statuses[200] > 0 and statuses[400] > 0 and statuses[404] > 0, report
    assert snapshot(batch) == before, report
    # Holding any one of the 32 MiB bodies would exceed this; the run itself adds a few MiB.
    assert grown < 16 << 20, f"server RSS grew by {grown >> 20} MiB over the run ({report})"

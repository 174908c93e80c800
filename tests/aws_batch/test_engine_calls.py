"""The AWS Batch engine's calls, one by one, against a real second genobatch server (real boto3)."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

import boto3
import pytest
from aws_remote import attempt, make_engine, remote_jobs_named, session_for, wait_state
from harness import launch

from genobatch.backends.aws_batch import AwsBatchEngine, engine_from_tags, remote_definition_name
from genobatch.backends.remote import Refused, RemoteUnavailable, Submitted


@pytest.fixture(scope="module")
def engine(remote, remote_queue):
    engine = make_engine(remote, remote_queue)
    yield engine
    engine.close()


def test_submit_runs_the_attempt_remotely_with_genobatchs_environment_and_log(engine, remote, remote_queue, tmp_path):
    script = 'echo "id=$AWS_BATCH_JOB_ID attempt=$AWS_BATCH_JOB_ATTEMPT index=$AWS_BATCH_JOB_ARRAY_INDEX x=$X"'
    spec = attempt(
        tmp_path,
        ["sh", "-c", script],
        job_id="1111aaaa-0000-4000-8000-000000000001:7",
        attempt_no=2,
        environment={"AWS_BATCH_JOB_ARRAY_INDEX": "7", "X": 'it\'s "quoted" $HOME'},
    )
    [result] = engine.submit([spec])
    assert isinstance(result, Submitted)
    assert result.info["instance_type"] == "m5.xlarge" and result.info["purchase_option"] == "spot"
    state = wait_state(engine, result.handle)
    assert (state.exit_code, state.status_reason, state.final, state.timed_out) == (
        0,
        "Essential container in task exited",
        False,
        False,
    )
    assert state.started_at_ms and state.stopped_at_ms and state.usage["realtime_ms"] >= 0
    # The remote job: named after the attempt, on the remote queue, tagged with the local job.
    [remote_job] = remote.client().describe_jobs(jobs=[result.handle])["jobs"]
    assert remote_job["jobName"] == spec.name == "gb_1111aaaa-0000-4000-8000-000000000001_7_2"
    assert remote_job["tags"]["genobatch:job-id"] == spec.job_id
    assert remote_job["retryStrategy"]["attempts"] == 1
    assert {r["type"]: r["value"] for r in remote_job["container"]["resourceRequirements"]} == {
        "VCPU": "1",
        "MEMORY": "64",
    }
    # Its log, copied from the remote's CloudWatch Logs: the job saw genobatch's own values.
    engine.collect_log(result.handle, state, spec.attempt_dir)
    output = Path(spec.attempt_dir, "output.log").read_text()
    assert output == f'id={spec.job_id} attempt=2 index=7 x=it\'s "quoted" $HOME\n'
    engine.collect_log(result.handle, state, spec.attempt_dir)  # nothing new: nothing appended
    assert Path(spec.attempt_dir, "output.log").read_text() == output


def test_remote_definition_is_registered_once_and_reused(engine, remote, remote_queue, tmp_path):
    container = {"image": "busybox:1.36", "readonlyRootFilesystem": False}
    first = attempt(tmp_path, ["true"], container=container, job_definition="reuse-me:4")
    second = attempt(
        tmp_path, ["echo", "other command"], container=container, job_definition="reuse-me:4", memory_mib=96
    )
    fresh = make_engine(remote, remote_queue)  # another server (or a restart): nothing cached
    try:
        results = engine.submit([first]) + engine.submit([second]) + fresh.submit([first])
    finally:
        fresh.close()
    assert all(isinstance(r, Submitted) for r in results)
    name = remote_definition_name("reuse-me:4", {"image": "busybox:1.36", "readonlyRootFilesystem": False})
    assert name.startswith("gb-reuse-me-4-")
    definitions = remote.client().describe_job_definitions(jobDefinitionName=name)["jobDefinitions"]
    assert [d["revision"] for d in definitions] == [1]
    assert definitions[0]["containerProperties"]["image"] == "busybox:1.36"
    jobs = remote.client().describe_jobs(jobs=[r.handle for r in results])["jobs"]
    assert {j["jobDefinition"].rsplit("/", 1)[1] for j in jobs} == {f"{name}:1"}
    # Many attempts of a new definition in one batch (submitted in parallel): still registered once.
    batch = [
        attempt(tmp_path, ["true"], container={"image": "busybox:1.35"}, job_definition="many:1") for _ in range(12)
    ]
    assert all(isinstance(r, Submitted) for r in engine.submit(batch))
    many = remote_definition_name("many:1", {"image": "busybox:1.35"})
    assert [
        d["revision"] for d in remote.client().describe_job_definitions(jobDefinitionName=many)["jobDefinitions"]
    ] == [1]
    # Other content is another definition.
    other = attempt(tmp_path, ["true"], container={"image": "busybox:1.37"}, job_definition="reuse-me:4")
    assert isinstance(engine.submit([other])[0], Submitted)
    assert remote_definition_name("reuse-me:4", {"image": "busybox:1.37"}) != name


def test_exit_code_and_find_by_name(engine, remote, remote_queue, tmp_path):
    parent = str(uuid.uuid4())
    specs = [attempt(tmp_path, ["sh", "-c", f"exit {i}"], job_id=f"{parent}:{i}") for i in range(3)]
    results = engine.submit(specs)
    handles = [r.handle for r in results]
    assert [wait_state(engine, h).exit_code for h in handles] == [0, 1, 2]
    never = attempt(tmp_path, ["true"], job_id=f"{parent}:9")
    found = engine.find([s.name for s in specs] + [never.name, attempt(tmp_path, ["true"]).name])
    assert found == {s.name: h for s, h in zip(specs, handles, strict=True)}


def test_states_answer_for_many_handles_in_few_calls(engine, remote, remote_queue, tmp_path):
    specs = [attempt(tmp_path, ["true"]) for _ in range(3)]
    handles = [r.handle for r in engine.submit(specs)]
    calls: list[str] = []
    engine._client.meta.events.register("before-call.batch.DescribeJobs", lambda **kw: calls.append("x"))
    unknown = str(uuid.uuid4())
    states = engine.states(handles * 40 + [unknown])  # 121 ids: two calls
    assert set(states) == set(handles)
    assert len(calls) == 2


def test_terminate_ends_a_running_attempt(engine, remote, remote_queue, tmp_path):
    spec = attempt(tmp_path, ["sleep", "60"])
    [result] = engine.submit([spec])
    wait_state(engine, result.handle, ("running",))
    engine.signal([result.handle])
    state = wait_state(engine, result.handle, timeout=40)
    assert state.exit_code != 0
    assert remote.client().describe_jobs(jobs=[result.handle])["jobs"][0]["status"] == "FAILED"
    engine.cancel([result.handle])  # ended already: a no-op, no error


def test_a_job_the_remote_queue_can_never_run_ends_final_and_is_cancelled_there(engine, remote, tmp_path):
    # The remote host has far less memory than this: its queue holds the job RUNNABLE, MISCONFIGURATION.
    spec = attempt(tmp_path, ["true"], memory_mib=64 * 1024 * 1024)
    [result] = engine.submit([spec])
    assert isinstance(result, Submitted)
    state = wait_state(engine, result.handle)
    assert state.final and state.status_reason.startswith("MISCONFIGURATION:")
    # states() cancelled it there (TerminateJob answers once the remote committed it).
    assert remote.client().describe_jobs(jobs=[result.handle])["jobs"][0]["status"] == "FAILED"


def test_refusals_are_per_job(engine, tmp_path):
    bad_resources = attempt(tmp_path, ["true"], vcpus=0)
    bad_definition = attempt(tmp_path, ["true"], container={"secrets": [{"name": "S", "valueFrom": "arn:x"}]})
    good = attempt(tmp_path, ["true"])
    resources, definition, ok = engine.submit([bad_resources, bad_definition, good])
    assert isinstance(resources, Refused) and resources.misconfiguration
    assert "VCPU" in resources.message
    assert isinstance(definition, Refused) and not definition.misconfiguration
    assert "secrets" in definition.message
    assert isinstance(ok, Submitted)


def test_an_unreachable_endpoint_is_unavailable_and_nothing_is_sent(remote, remote_queue, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    session = session_for(remote)
    engine = AwsBatchEngine("ce", remote_queue, session=session, endpoint=f"http://127.0.0.1:{port}")
    try:
        for call in (engine.probe, lambda: engine.submit([attempt(tmp_path, ["true"])]), lambda: engine.states(["x"])):
            with pytest.raises(RemoteUnavailable, match=f"remote queue {remote_queue} at http://127.0.0.1:{port}"):
                call()
    finally:
        engine.close()


def test_a_missing_queue_or_bad_credentials_are_unavailable_naming_it(remote, tmp_path):
    missing = make_engine(remote, "no-such-queue")
    bad_keys = boto3.Session(aws_access_key_id="AKIDWRONG", aws_secret_access_key="nope", region_name=remote.region)
    refused = AwsBatchEngine("ce", "default", session=bad_keys, endpoint=remote.endpoint)
    try:
        with pytest.raises(RemoteUnavailable, match="no-such-queue.*does not exist"):
            missing.submit([attempt(tmp_path, ["true"])])
        with pytest.raises(RemoteUnavailable, match="credentials refused"):
            refused.probe()
    finally:
        missing.close()
        refused.close()


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ({}, "genobatch:aws-batch-job-queue is required"),
        ({"genobatch:aws-batch-job-queue": "bad name!"}, "genobatch:aws-batch-job-queue: 'bad name!'"),
        ({"genobatch:aws-batch-job-queue": "q", "genobatch:aws-batch-endpoint": "ftp://x"}, "aws-batch-endpoint"),
        ({"genobatch:aws-batch-job-queue": "q", "genobatch:aws-batch-region": "mars"}, "aws-batch-region: 'mars'"),
        ({"genobatch:aws-batch-job-queue": "q", "genobatch:aws-profile": "nosuchprofile"}, "genobatch:aws-profile"),
    ],
)
def test_engine_from_tags_names_the_bad_tag(tags, message, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    with pytest.raises(ValueError, match=message.replace("!", ".")):
        engine_from_tags("ce", {"genobatch:aws-batch-region": "us-east-1", **tags})


def test_engine_from_tags_reads_queue_region_endpoint_and_profile(monkeypatch, tmp_path):
    (tmp_path / "config").write_text("[profile lab]\nregion = eu-central-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    tags = {
        "genobatch:aws-batch-job-queue": "arn:aws:batch:eu-central-1:123456789012:job-queue/genomes",
        "genobatch:aws-batch-endpoint": "http://127.0.0.1:9",
        "genobatch:aws-profile": "lab",
    }
    engine = engine_from_tags("ce", tags)
    try:
        assert (engine.queue, engine.region, engine.endpoint) == (
            tags["genobatch:aws-batch-job-queue"],
            "eu-central-1",
            "http://127.0.0.1:9",
        )
    finally:
        engine.close()


@pytest.mark.slow
def test_throttled_submissions_are_retried_not_reported(tmp_path_factory, tmp_path):
    limited = launch(tmp_path_factory, "--cpus", "2", "--api-rate-limit", "SubmitJob=5")
    engine = make_engine(limited, "default", submit_tps=50)  # ten times the quota: throttled often
    try:
        specs = [attempt(tmp_path, ["true"]) for _ in range(15)]
        results = engine.submit(specs)
        assert all(isinstance(r, Submitted) for r in results), results
        assert engine.throttled > 0
        for spec in specs:
            assert len(remote_jobs_named(limited, "default", spec.name)) == 1
    finally:
        engine.close()
        limited.stop()


def test_logs_of_attempts_that_ended_together_are_read_in_one_call_and_never_twice(remote, remote_queue, tmp_path):
    engine = make_engine(remote, remote_queue)
    calls: list[str] = []
    engine._logs.meta.events.register("before-call.logs", lambda model, **_: calls.append(model.name))
    try:
        specs = [attempt(tmp_path, ["sh", "-c", f"echo first {i}; echo second {i}"]) for i in range(5)]
        handles = [r.handle for r in engine.submit(specs)]
        for handle in handles:
            wait_state(engine, handle)
        calls.clear()
        states = engine.states(handles)
        for spec, handle in zip(specs, handles, strict=True):
            engine.collect_log(handle, states[handle], spec.attempt_dir)
        assert calls == ["FilterLogEvents"]
        for i, spec in enumerate(specs):
            assert Path(spec.attempt_dir, "output.log").read_text() == f"first {i}\nsecond {i}\n"
    finally:
        engine.close()
    # A restarted server (a new engine, nothing in memory) copies nothing again.
    again = make_engine(remote, remote_queue)
    try:
        states = again.states(handles)
        for spec, handle in zip(specs, handles, strict=True):
            again.collect_log(handle, states[handle], spec.attempt_dir)
        assert Path(specs[0].attempt_dir, "output.log").read_text() == "first 0\nsecond 0\n"
    finally:
        again.close()


def test_a_running_attempts_log_is_copied_as_it_grows(engine, tmp_path):
    spec = attempt(tmp_path, ["sh", "-c", "echo early; sleep 4; echo late"])
    [result] = engine.submit([spec])
    running = wait_state(engine, result.handle, ("running",))
    deadline = time.monotonic() + 10
    log = Path(spec.attempt_dir, "output.log")
    while not log.exists() and time.monotonic() < deadline:
        engine._log_copier.forget(result.handle)  # copy now, not in 30 s
        engine.collect_log(result.handle, engine.states([result.handle])[result.handle], spec.attempt_dir)
    assert running.phase == "running" and log.read_text() == "early\n"
    ended = wait_state(engine, result.handle)
    engine.collect_log(result.handle, ended, spec.attempt_dir)
    assert log.read_text() == "early\nlate\n"

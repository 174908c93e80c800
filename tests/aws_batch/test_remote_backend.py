"""RemoteBackend driving the AWS Batch engine: the events genobatch's engine sees, end to end.

The remote is a real second genobatch server; nothing is mocked. Crash recovery is exercised as
the engine does it after a restart: ``reconcile`` with the persisted info (or none, when the
server died before the handle was committed).
"""

from __future__ import annotations

import pytest
from aws_remote import Events, attempt, make_engine, remote_jobs_named
from harness import launch

from genobatch.backends.base import AttemptExited, AttemptStarted, AttemptSubmitted, EnvironmentHealth
from genobatch.backends.remote import RemoteBackend


def backend_for(remote, queue_name: str, **options) -> tuple[RemoteBackend, Events]:
    engine = make_engine(remote, queue_name, **options)
    engine.poll_interval_s = 0.3
    backend = RemoteBackend(engine, "local-ce")
    events = Events()
    backend.bind(events)
    return backend, events


def test_attempts_report_submitted_started_exited(remote, remote_queue, tmp_path):
    backend, events = backend_for(remote, remote_queue)
    try:
        specs = [attempt(tmp_path, ["sh", "-c", f"echo hello {i}; exit {i}"]) for i in range(3)]
        for spec in specs:
            backend.start(spec)
        exits = {spec.job_id: events.wait(AttemptExited, spec.job_id) for spec in specs}
        assert [exits[s.job_id].exit_code for s in specs] == [0, 1, 2]
        for spec in specs:
            submitted = events.wait(AttemptSubmitted, spec.job_id)
            started = events.wait(AttemptStarted, spec.job_id)
            assert events.of(spec.job_id) == ["AttemptSubmitted", "AttemptStarted", "AttemptExited"]
            assert submitted.info["handle"] == started.info["handle"]
            assert started.info["instance_type"] == "m5.xlarge"
            assert started.info["log_stream"]
            assert exits[spec.job_id].usage["realtime_ms"] >= 0
            assert (tmp_path / spec.job_id / "1" / "output.log").read_text() == f"hello {specs.index(spec)}\n"
        assert events.wait(EnvironmentHealth).problem is None
    finally:
        backend.close()


def test_stop_terminates_the_remote_job(remote, remote_queue, tmp_path):
    backend, events = backend_for(remote, remote_queue)
    try:
        spec = attempt(tmp_path, ["sleep", "60"])
        backend.start(spec)
        handle = events.wait(AttemptStarted, spec.job_id).info["handle"]
        backend.stop(spec.job_id, 1, grace_s=30)
        exited = events.wait(AttemptExited, spec.job_id, timeout=45)
        assert exited.exit_code != 0
        assert remote.client().describe_jobs(jobs=[handle])["jobs"][0]["status"] == "FAILED"
    finally:
        backend.close()


def test_reconcile_adopts_by_name_and_never_submits_twice(remote, remote_queue, tmp_path):
    # The previous server submitted these, then died before their handles were committed.
    first, events = backend_for(remote, remote_queue)
    specs = [attempt(tmp_path, ["sleep", "1"]) for _ in range(2)]
    for spec in specs:
        first.start(spec)
    handles = {spec.job_id: events.wait(AttemptSubmitted, spec.job_id).info["handle"] for spec in specs}
    first.close()
    never_sent = attempt(tmp_path, ["true"])  # died before submitting this one at all

    restarted, events = backend_for(remote, remote_queue)
    try:
        for spec in specs:
            assert restarted.reconcile(spec, {}) is None
        assert restarted.reconcile(never_sent, {}) is None
        for spec in [*specs, never_sent]:
            assert events.wait(AttemptExited, spec.job_id).exit_code == 0
        for spec in specs:
            assert events.wait(AttemptSubmitted, spec.job_id).info["handle"] == handles[spec.job_id]
        for spec in [*specs, never_sent]:
            assert len(remote_jobs_named(remote, remote_queue, spec.name)) == 1
    finally:
        restarted.close()


def test_a_misconfigured_job_ends_final_without_retry(remote, remote_queue, tmp_path):
    backend, events = backend_for(remote, remote_queue)
    try:
        spec = attempt(tmp_path, ["true"], memory_mib=64 * 1024 * 1024)
        backend.start(spec)
        exited = events.wait(AttemptExited, spec.job_id)
        assert exited.final and exited.exit_code is None
        assert exited.status_reason.startswith("MISCONFIGURATION:")
    finally:
        backend.close()


@pytest.mark.slow
def test_remote_down_keeps_attempts_and_resumes(tmp_path_factory, tmp_path):
    remote = launch(tmp_path_factory, "--cpus", "2")
    backend, events = backend_for(remote, "default")
    try:
        running = attempt(tmp_path, ["sleep", "3"])
        backend.start(running)
        events.wait(AttemptStarted, running.job_id)
        remote.stop()
        waiting = attempt(tmp_path, ["true"])
        backend.start(waiting)  # cannot be submitted while the remote is down
        health = events.wait(EnvironmentHealth, timeout=30, where=lambda e: e.problem is not None)
        assert "remote queue default at" in health.problem
        assert AttemptExited.__name__ not in events.of(running.job_id) + events.of(waiting.job_id)
        remote.start()
        healthy = events.wait(EnvironmentHealth, timeout=30, where=lambda e: e is not health and e.problem is None)
        assert healthy.compute_environment == "local-ce"
        assert events.wait(AttemptExited, running.job_id, timeout=60).exit_code == 0
        assert events.wait(AttemptExited, waiting.job_id, timeout=60).exit_code == 0
        assert len(remote_jobs_named(remote, "default", waiting.name)) == 1
        assert len(remote_jobs_named(remote, "default", running.name)) == 1
    finally:
        backend.close()
        remote.stop()

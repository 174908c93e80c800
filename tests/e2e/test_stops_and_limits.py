"""Stops, processes and memory limits of jobs are real, end to end through the server.

* a stop outlives ``kill -9`` of the server during its grace period;
* no process of a job outlives it;
* MEMORY is a kernel limit where the server can create cgroups, and the job's native detail says
  which enforcement and containment were in force;
* ``--job-user`` runs jobs as another user, who cannot read the server's credentials.
"""

from __future__ import annotations

import os
import pwd
import time
import uuid
from pathlib import Path

import pytest
from harness import launch, wait_for
from test_containment import CGROUPS, marked_pids

_MIB = 1024 * 1024


def define(batch, command: list[str], memory: int = 128) -> str:
    return batch.register_job_definition(
        jobDefinitionName="limits-" + uuid.uuid4().hex[:8],
        type="container",
        containerProperties={
            "image": "busybox",
            "command": command,
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": str(memory)}],
        },
    )["jobDefinitionArn"]


def submit(batch, definition: str) -> str:
    return batch.submit_job(jobName="limits", jobQueue="default", jobDefinition=definition)["jobId"]


def attempt_of(server, job_id: str) -> dict:
    return server.native(f"/jobs/{job_id}")["attempts"][-1]


def wait_for_path(path: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


@pytest.mark.slow
def test_stop_survives_kill_dash_nine_during_the_grace_period(tmp_path_factory):
    server = launch(tmp_path_factory)
    try:
        stop_across_a_crash(server)
    finally:
        server.stop()


def stop_across_a_crash(server) -> None:
    batch = server.client()
    # Both jobs ignore SIGTERM (the ignored disposition is inherited by the sleep).
    definition = define(batch, ["sh", "-c", "trap '' TERM; echo > ready; sleep 300"])
    begun, never_begun = submit(batch, definition), submit(batch, definition)
    dirs = {}
    for job_id in (begun, never_begun):
        wait_for(batch, job_id, ("RUNNING",))
        dirs[job_id] = Path(attempt_of(server, job_id)["attemptDir"])
        wait_for_path(dirs[job_id] / "work" / "ready")
    terminated_at = time.time()
    for job_id in (begun, never_begun):
        batch.terminate_job(jobId=job_id, reason="stopped by the test")
    for job_id in (begun, never_begun):
        wait_for_path(dirs[job_id] / "stop")
    server.stop(kill=True)  # during the 30 s grace: SIGTERM was ignored, SIGKILL not sent yet
    # As if the server had died after committing the second stop but before carrying it out.
    (dirs[never_begun] / "stop").unlink()
    time.sleep(1)
    assert marked_pids(dirs[begun]) and marked_pids(dirs[never_begun])  # still running, unattended

    server.start()
    batch = server.client()
    first = wait_for(batch, begun, timeout=45)
    second = wait_for(batch, never_begun, timeout=45)
    for detail in (first, second):
        assert detail["status"] == "FAILED" and detail["statusReason"] == "stopped by the test"
        assert detail["attempts"][0]["container"]["exitCode"] == 137
    # The begun stop keeps its deadline (30 s after TerminateJob, not 30 s after the restart);
    # the one never carried out gets its SIGTERM and full grace after the restart.
    assert 29 <= first["stoppedAt"] / 1000 - terminated_at < 34
    assert second["stoppedAt"] > first["stoppedAt"]
    for job_id in (begun, never_begun):
        assert not marked_pids(dirs[job_id])


def test_processes_of_a_job_end_with_it(genobatch_server, batch):
    # A background child, a setsid child, and a grandchild that ignores SIGTERM: the job SUCCEEDS
    # at once, and none of them may keep running on the vCPU the next job is given.
    script = "sleep 299 & setsid sleep 299 & sh -c \"trap '' TERM; sleep 299\" & exit 0"
    job_id = submit(batch, define(batch, ["sh", "-c", script]))
    detail = wait_for(batch, job_id)
    assert detail["status"] == "SUCCEEDED"
    attempt = attempt_of(genobatch_server, job_id)
    assert attempt["execution"]["containment"] == ("cgroup" if CGROUPS else "session")
    deadline = time.monotonic() + 2
    while marked_pids(Path(attempt["attemptDir"])):
        assert time.monotonic() < deadline, "processes outlived their job"
        time.sleep(0.05)


@pytest.mark.skipif(not CGROUPS, reason="no writable cgroup hierarchy (needs root or delegation)")
def test_memory_is_a_kernel_limit(genobatch_server, batch):
    hog = "python3 -c \"x = b'x' * (300 * 1024 * 1024)\"; echo survived"
    job_id = submit(batch, define(batch, ["sh", "-c", hog], memory=64))
    detail = wait_for(batch, job_id)
    assert detail["status"] == "FAILED"
    assert detail["container"]["reason"] == "OutOfMemoryError: Container killed due to memory usage"
    assert detail["container"]["exitCode"] == 137
    attempt = attempt_of(genobatch_server, job_id)
    assert attempt["execution"]["memory_enforcement"] in ("cgroup v1", "cgroup v2")
    assert attempt["execution"]["containment"] == "cgroup"
    # The kernel never let it past 64 MiB (a 0.25 s sampler saw 260-428 MiB).
    assert attempt["usage"]["peak_memory_charged"] <= 64 * _MIB
    assert attempt["usage"]["peak_rss"] <= 64 * _MIB
    assert "survived" not in genobatch_server.native(f"/jobs/{job_id}/logs")["data"]


@pytest.mark.skipif(os.geteuid() != 0, reason="--job-user needs a server running as root")
def test_job_user_cannot_read_the_servers_credentials(tmp_path_factory):
    server = launch(tmp_path_factory, "--job-user", "nobody")
    try:
        batch = server.client()
        credentials = server.data_dir / "credentials.json"
        script = f"id -un; cat {credentials} || echo no-access; echo ok > mine; ls -ln mine"
        job_id = submit(batch, define(batch, ["sh", "-c", script]))
        detail = wait_for(batch, job_id)
        text = server.native(f"/jobs/{job_id}/logs")["data"]
        assert detail["status"] == "SUCCEEDED", text
        assert text.splitlines()[0] == "nobody"
        assert "no-access" in text and server.secret_key not in text
        assert f" {pwd.getpwnam('nobody').pw_uid} " in text  # the files it writes are its own
        assert attempt_of(server, job_id)["execution"]["user"] == "nobody"
    finally:
        server.stop()


def test_unknown_job_user_stops_the_server_from_starting(tmp_path_factory):
    with pytest.raises(RuntimeError, match="job user 'genobatch-no-such-user' does not exist"):
        launch(tmp_path_factory, "--job-user", "genobatch-no-such-user")


def test_max_log_mib_caps_the_log(tmp_path_factory):
    server = launch(tmp_path_factory, "--max-log-mib", "1")
    try:
        batch = server.client()
        # About 3 MB of numbered lines, then one last line.
        script = "seq 1 400000; echo last-line"
        job_id = submit(batch, define(batch, ["sh", "-c", script]))
        assert wait_for(batch, job_id)["status"] == "SUCCEEDED"  # the cap never fails the job
        log_file = Path(attempt_of(server, job_id)["attemptDir"]) / "output.log"
        text = log_file.read_text()
        assert log_file.stat().st_size <= _MIB
        assert text.startswith("1\n2\n3\n") and text.endswith("400000\nlast-line\n")
        assert f"output.log is capped at {_MIB} bytes" in text
    finally:
        server.stop()

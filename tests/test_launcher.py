"""The persistent launcher's own guarantees (genobatch.backends.launcher), with real processes.

One ``posix_spawn`` per attempt in its own session with default signals; exit statuses recorded
durably by the launcher; a server killed with ``kill -9`` finds its attempts again; a launcher
killed with ``kill -9`` loses no recorded exit and its running attempts are reported as vanished
(and killed), never with a made-up exit code.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from harness import launch, shell_definition, wait_for
from test_local_backend import Events, found_after_restart, make_spec, sh, wait_for_file

from genobatch.backends.base import AttemptExited, AttemptStarted
from genobatch.backends.local import FAILED_TO_START, LocalBackend
from genobatch.backends.outcome import VANISHED_LAUNCHER
from genobatch.backends.usage import read_exit_record

PY = sys.executable


def launcher_pid(data_dir: Path) -> int:
    """The pid of the persistent launcher serving a server's data directory (from /proc)."""
    wanted = str(data_dir / "launcher").encode()
    for name in os.listdir("/proc"):
        with contextlib.suppress(OSError):
            args = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
            if b"genobatch.backends.launcher" in args and wanted in args:
                return int(name)
    raise AssertionError(f"no launcher runs for {data_dir}")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def wait_gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid):
        assert time.monotonic() < deadline, f"process {pid} still runs"
        time.sleep(0.02)


def stat_fields(pid: int) -> list[bytes]:
    with open(f"/proc/{pid}/stat", "rb") as fh:
        return fh.read().rsplit(b")", 1)[1].split()


@pytest.fixture
def launcher_dir(tmp_path: Path):
    directory = tmp_path / "launcher"
    yield str(directory)
    # What a failed test left running: a launcher of this directory (one exits by itself once
    # nothing runs), found by its command line so that a reused pid is never hit.
    for name in os.listdir("/proc"):
        with contextlib.suppress(OSError):
            args = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
            if b"genobatch.backends.launcher" in args and str(directory).encode() in args:
                os.kill(int(name), signal.SIGKILL)


def backend_for(launcher_dir: str) -> LocalBackend:
    return LocalBackend(monitor_interval_s=0.1, launcher="persistent", launcher_dir=launcher_dir)


pytestmark = pytest.mark.no_store


def test_bad_setting_is_refused_naming_it():
    with pytest.raises(ValueError, match="launcher 'fork' is not one of wrapper, persistent"):
        LocalBackend(launcher="fork")


def test_one_spawn_per_attempt_in_its_own_session_with_default_signals(tmp_path, launcher_dir):
    backend = backend_for(launcher_dir)
    events = Events(backend)
    try:
        script = "grep -E 'Sig(Ign|Blk)' /proc/self/status > signals.txt; echo out; echo err >&2; exit 3"
        spec = make_spec(tmp_path, "one", sh(script))
        backend.start(spec)
        started = events.wait("one", AttemptStarted)
        exited = events.wait("one", AttemptExited)
    finally:
        backend.close()
    attempt_dir = Path(spec.attempt_dir)
    assert exited.exit_code == 3 and exited.status_reason == "Essential container in task exited"
    # The command is the launcher's own child (no shell, setsid or env in between).
    assert started.info["pid"] == started.info["child_pid"] == int((attempt_dir / "child.pid").read_text())
    assert started.info["launcher_pid"] > 0 and started.info["launcher_pid"] != os.getpid()
    assert not (attempt_dir / "wrapper.pid").exists()
    signals = dict(line.split(":") for line in (attempt_dir / "work" / "signals.txt").read_text().splitlines())
    assert int(signals["SigIgn"], 16) == 0 and int(signals["SigBlk"], 16) == 0
    assert (attempt_dir / "output.log").read_bytes() == b"out\nerr\n"
    record = read_exit_record(str(attempt_dir))
    assert record is not None and record.exit_code == 3 and record.cpu_user_ms is not None
    assert {"cpu_user_ms", "cpu_sys_ms", "cpu_time_ms", "rchar", "wchar", "realtime_ms"} <= set(exited.usage)


def test_session_and_affinity_hold_from_the_first_instruction(tmp_path, launcher_dir):
    cpu = sorted(os.sched_getaffinity(0))[-1]
    backend = backend_for(launcher_dir)
    events = Events(backend)
    try:
        spec = make_spec(tmp_path, "pin", [PY, "-c", "import time; time.sleep(30)"], cpus=(cpu,))
        backend.start(spec)
        pid = events.wait("pin", AttemptStarted).info["child_pid"]
        fields = stat_fields(pid)
        assert int(fields[2]) == pid and int(fields[3]) == pid  # process group and session leader
        assert os.sched_getaffinity(pid) == {cpu}
        backend.stop("pin", 1, grace_s=5)
        assert events.wait("pin", AttemptExited).exit_code == 143
    finally:
        backend.close()


def test_executable_not_found_is_a_failed_start(tmp_path, launcher_dir):
    backend = backend_for(launcher_dir)
    events = Events(backend)
    try:
        spec = make_spec(tmp_path, "nf", ["genobatch-no-such-command"])
        backend.start(spec)
        exited = events.wait("nf", AttemptExited)
    finally:
        backend.close()
    assert exited.exit_code is None and exited.status_reason == FAILED_TO_START
    assert "executable file not found" in (exited.reason or "")
    assert not any(isinstance(e, AttemptStarted) for e in events.of("nf"))


def test_launcher_outlives_a_crashed_server_and_exits_when_idle(tmp_path, launcher_dir):
    quick = make_spec(tmp_path, "quick", sh("sleep 0.3; exit 5"))
    slow = make_spec(tmp_path, "slow", sh("echo > ready; sleep 1.5; exit 6"))
    first = backend_for(launcher_dir)
    events = Events(first)
    first.start(quick)
    first.start(slow)
    infos = {s.job_id: events.wait(s.job_id, AttemptStarted).info for s in (quick, slow)}
    launcher_pid = infos["slow"]["launcher_pid"]
    first.close()  # the server's crash, as far as its attempts are concerned
    wait_for_file(Path(quick.attempt_dir) / "exit_status")
    assert alive(launcher_pid)  # it still runs the slow one
    second = backend_for(launcher_dir)
    events = Events(second)
    try:
        recovered = second.reconcile(found_after_restart("quick", quick.attempt_dir), infos["quick"])
        assert recovered is not None and recovered.exit_code == 5
        assert second.reconcile(found_after_restart("slow", slow.attempt_dir), infos["slow"]) is None  # adopted
        assert events.wait("slow", AttemptStarted).info == {"adopted": True}
        # Well within the watcher's first look at the launcher (which once blocked for 10 s).
        assert events.wait("slow", AttemptExited, timeout=6).exit_code == 6
    finally:
        second.close()
    wait_gone(launcher_pid)  # no server and nothing running: it went away


def test_kill_dash_nine_of_the_launcher(tmp_path, launcher_dir):
    done = make_spec(tmp_path, "done", sh("exit 4"))
    running = make_spec(tmp_path, "running", sh("echo > ready; sleep 30"))
    first = backend_for(launcher_dir)
    events = Events(first)
    try:
        first.start(done)
        first.start(running)
        info = events.wait("running", AttemptStarted).info
        wait_for_file(Path(running.attempt_dir) / "work" / "ready")
    finally:
        first.close()
    wait_for_file(Path(done.attempt_dir) / "exit_status")
    os.kill(info["launcher_pid"], signal.SIGKILL)
    wait_gone(info["launcher_pid"])
    assert alive(info["child_pid"])  # the job itself outlived its launcher
    second = backend_for(launcher_dir)
    events = Events(second)
    try:
        # The exit recorded before the kill is not lost...
        recovered = second.reconcile(found_after_restart("done", done.attempt_dir), {})
        assert recovered is not None and recovered.exit_code == 4
        # ...and the attempt that ran on is reported as vanished, not with an exit code, and killed.
        vanished = second.reconcile(found_after_restart("running", running.attempt_dir), info)
        assert vanished is not None and vanished.exit_code is None
        assert vanished.status_reason.startswith("Host process vanished")
        wait_gone(info["child_pid"])
        # A new launcher serves new attempts.
        again = make_spec(tmp_path, "again", sh("exit 0"), attempt=1)
        second.start(again)
        assert events.wait("again", AttemptExited).exit_code == 0
        assert events.wait("again", AttemptStarted).info["launcher_pid"] != info["launcher_pid"]
    finally:
        second.close()


def test_kill_dash_nine_of_the_launcher_under_a_running_server(tmp_path, launcher_dir):
    backend = backend_for(launcher_dir)
    events = Events(backend)
    try:
        spec = make_spec(tmp_path, "orphan", sh("echo > ready; sleep 30"))
        backend.start(spec)
        info = events.wait("orphan", AttemptStarted).info
        wait_for_file(Path(spec.attempt_dir) / "work" / "ready")
        os.kill(info["launcher_pid"], signal.SIGKILL)
        exited = events.wait("orphan", AttemptExited)
        assert exited.exit_code is None and exited.status_reason == VANISHED_LAUNCHER
        wait_gone(info["child_pid"])  # nothing of the attempt runs on unwatched
        later = make_spec(tmp_path, "later", sh("exit 2"))
        backend.start(later)
        assert events.wait("later", AttemptExited).exit_code == 2
    finally:
        backend.close()


@pytest.mark.slow
def test_server_kill_dash_nine_with_the_launcher_alive(tmp_path_factory, tmp_path):
    server = launch(tmp_path_factory, "--launcher", "persistent")
    batch = server.client()

    ends_while_down = batch.submit_job(
        jobName="down", jobQueue="default", jobDefinition=shell_definition(batch, "down", "sleep 1; exit 3")
    )["jobId"]
    runs_across = batch.submit_job(
        jobName="across", jobQueue="default", jobDefinition=shell_definition(batch, "across", "sleep 4; exit 0")
    )["jobId"]
    for job_id in (ends_while_down, runs_across):
        wait_for(batch, job_id, ("RUNNING",))
    attempt_dir = server.data_dir / "jobs" / runs_across / "1"
    child = int((attempt_dir / "child.pid").read_text())
    server.stop(kill=True)
    time.sleep(1.5)  # the first job ends while no server runs; the launcher records it
    assert read_exit_record(str(server.data_dir / "jobs" / ends_while_down / "1")) is not None
    assert alive(child)
    server.start()
    batch = server.client()
    down = wait_for(batch, ends_while_down, timeout=60)
    assert down["status"] == "FAILED" and down["attempts"][0]["container"]["exitCode"] == 3
    across = wait_for(batch, runs_across, timeout=60)
    assert across["status"] == "SUCCEEDED" and len(across["attempts"]) == 1
    server.stop()


def test_a_data_dir_too_long_for_a_socket_address(tmp_path):
    # sun_path holds 108 bytes: the launcher binds relative to its directory, the server
    # connects through /proc/self/fd.
    launcher_dir = tmp_path / ("d" * 60) / ("e" * 60) / "launcher"
    assert len(str(launcher_dir / "launcher.sock")) > 108
    backend = backend_for(str(launcher_dir))
    events = Events(backend)
    try:
        backend.start(make_spec(tmp_path, "long", sh("exit 7")))
        assert events.wait("long", AttemptExited).exit_code == 7
    finally:
        backend.close()

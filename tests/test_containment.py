"""Stops, processes and memory of local attempts are real: durable stops, no escaped processes,
kernel-enforced memory (cgroup) or PSS sampling, a capped log and an optional job user.

Real processes throughout; the cgroup tests need a writable cgroup hierarchy (root here and in
CI) and are skipped with that reason elsewhere.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from test_local_backend import PY, Events, kill_leftovers, make_spec, sh, wait_for_file

from genobatch.backends.base import AttemptExited, AttemptSpec, AttemptStarted
from genobatch.backends.cgroup import CgroupRoot
from genobatch.backends.host import MARKER_ENV, read_log
from genobatch.backends.local import FAILED_TO_START, OOM_REASON, WRAPPER, LocalBackend

pytestmark = pytest.mark.no_store  # uses no store: the PostgreSQL pass would only repeat it


def found_after_restart(job_id: str, attempt_dir: str) -> AttemptSpec:
    """The spec the engine hands ``reconcile`` for attempt 1 of ``job_id`` after a restart."""
    return AttemptSpec(job_id, 1, (), {}, str(attempt_dir), 1, 0)


_MIB = 1024 * 1024
CGROUPS = CgroupRoot.detect("tests") is not None
needs_cgroups = pytest.mark.skipif(not CGROUPS, reason="no writable cgroup hierarchy (needs root or delegation)")
CONTAINMENTS = [pytest.param(True, id="cgroup", marks=needs_cgroups), pytest.param(False, id="session")]


@pytest.fixture
def root(tmp_path: Path):
    yield tmp_path
    kill_leftovers(tmp_path)
    for pid in marked_pids(tmp_path):  # escaped processes of a failed test
        os.kill(pid, signal.SIGKILL)


def marked_pids(root: Path) -> list[int]:
    """Live processes whose environment carries the marker of an attempt under ``root``."""
    found = []
    prefix = f"{MARKER_ENV}={root}".encode()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            environ = Path(f"/proc/{name}/environ").read_bytes()
            state = Path(f"/proc/{name}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state != b"Z" and any(item.startswith(prefix) for item in environ.split(b"\0")):
            found.append(int(name))
    return found


def assert_no_process_left(root: Path, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while marked_pids(root):
        assert time.monotonic() < deadline, f"processes outlived their attempt: {marked_pids(root)}"
        time.sleep(0.02)


def new_backend(cgroups: bool = True, **kwargs) -> LocalBackend:
    return LocalBackend(monitor_interval_s=0.1, cgroups=cgroups, cgroup_group="tests", **kwargs)


# -- a stop survives a restart of the server --------------------------------------------------


def stubborn(root: Path, job_id: str):
    """A started job that ignores SIGTERM, stopped with ``grace`` by a backend that then dies."""
    return make_spec(root, job_id, sh("trap '' TERM; echo > ready; sleep 60"))


@pytest.mark.parametrize("cgroups", CONTAINMENTS)
def test_stop_escalation_resumes_after_a_restart_with_the_grace_left(root, cgroups):
    spec = stubborn(root, "stubborn")
    first = new_backend(cgroups)
    try:
        Events(first)
        first.start(spec)
        wait_for_file(Path(spec.attempt_dir) / "work" / "ready")
        stopped_at = time.monotonic()
        first.stop("stubborn", 1, grace_s=2.0)
        assert (Path(spec.attempt_dir) / "stop").exists()  # recorded before SIGTERM was sent
    finally:
        first.close()  # the server dies during the grace period; the job ignored SIGTERM
    second = new_backend(cgroups)
    events = Events(second)
    try:
        assert second.reconcile(found_after_restart("stubborn", spec.attempt_dir), {}) is None  # still running: adopted
        exited = events.wait("stubborn", AttemptExited, timeout=10)
        elapsed = time.monotonic() - stopped_at
    finally:
        second.close()
    assert exited.exit_code == 137
    assert 1.8 <= elapsed < 5  # the remaining grace, not a fresh one and not never
    assert_no_process_left(root)


def test_stop_past_its_grace_kills_at_once_after_a_restart(root):
    spec = stubborn(root, "late")
    first = new_backend()
    try:
        Events(first)
        first.start(spec)
        wait_for_file(Path(spec.attempt_dir) / "work" / "ready")
        first.stop("late", 1, grace_s=3.0)
    finally:
        first.close()
    time.sleep(3.3)  # the server is down when SIGKILL falls due
    second = new_backend()
    events = Events(second)
    try:
        t0 = time.monotonic()
        assert second.reconcile(found_after_restart("late", spec.attempt_dir), {}) is None
        exited = events.wait("late", AttemptExited, timeout=10)
        assert exited.exit_code == 137 and time.monotonic() - t0 < 2.0  # at once, not a fresh 3 s grace
        # A stop repeated after the restart (the engine re-issues committed stops) changes nothing.
        second.stop("late", 1, grace_s=30)
    finally:
        second.close()


# -- nothing outlives its attempt ---------------------------------------------------------------

ESCAPES = {
    # A background child of a command that exits at once (the job SUCCEEDS).
    "background": ("sleep 299 & exit 0", 0),
    # A child that leaves the session and process group.
    "setsid": ("setsid sleep 299 & exit 0", 0),
    # A daemonised grandchild: double fork, re-parented to init, in a new session.
    "daemon": ("(setsid sh -c 'sleep 299 &' &) ; sleep 0.3; exit 3", 3),
}


@pytest.mark.parametrize("cgroups", CONTAINMENTS)
@pytest.mark.parametrize("escape", sorted(ESCAPES))
def test_no_process_outlives_a_finished_attempt(root, cgroups, escape):
    script, code = ESCAPES[escape]
    backend = new_backend(cgroups)
    events = Events(backend)
    try:
        backend.start(make_spec(root, escape, sh(script)))
        exited = events.wait(escape, AttemptExited)
    finally:
        backend.close()
    assert exited.exit_code == code
    assert_no_process_left(root)


@pytest.mark.parametrize("cgroups", CONTAINMENTS)
def test_no_process_outlives_a_stopped_attempt(root, cgroups):
    # The command dies of SIGTERM; its grandchild ignores SIGTERM and would keep its vCPU.
    script = "sh -c \"trap '' TERM; echo > ready; while :; do sleep 1; done\" & wait"
    spec = make_spec(root, "grandchild", sh(script))
    backend = new_backend(cgroups)
    events = Events(backend)
    try:
        backend.start(spec)
        wait_for_file(Path(spec.attempt_dir) / "work" / "ready")
        backend.stop("grandchild", 1, grace_s=30)
        exited = events.wait("grandchild", AttemptExited, timeout=10)
    finally:
        backend.close()
    assert exited.exit_code == 143  # ended by SIGTERM, long before the grace period
    assert_no_process_left(root)


@needs_cgroups
def test_processes_left_while_the_server_was_down_are_killed_on_restart(root):
    spec = make_spec(root, "left", sh("setsid sleep 299 & sleep 0.5; exit 0"))
    first = new_backend()
    try:
        Events(first)
        first.start(spec)
    finally:
        first.close()
    wait_for_file(Path(spec.attempt_dir) / "exit_status")
    assert marked_pids(root)  # the escaped sleep is still there
    second = new_backend()
    try:
        exited = second.reconcile(found_after_restart("left", spec.attempt_dir), {})
    finally:
        second.close()
    assert exited is not None and exited.exit_code == 0
    assert_no_process_left(root)


# -- memory -------------------------------------------------------------------------------------


@needs_cgroups
def test_memory_limit_is_enforced_by_the_kernel(root):
    # 300 MB in a 64 MiB cgroup: the allocation never succeeds; the job is killed at the limit.
    hog = f"{PY} -c \"x = b'x' * (300 * 1024 * 1024); open('got', 'w')\"; echo survived"
    spec = make_spec(root, "hog", sh(hog), memory_mib=64)
    backend = new_backend()
    events = Events(backend)
    try:
        backend.start(spec)
        started = events.wait("hog", AttemptStarted)
        exited = events.wait("hog", AttemptExited)
    finally:
        backend.close()
    assert started.info["containment"] == "cgroup"
    assert started.info["memory_enforcement"] in ("cgroup v1", "cgroup v2")
    assert exited.exit_code == 137 and exited.reason == OOM_REASON
    assert b"survived" not in read_log(spec.attempt_dir)[0]  # the whole attempt ends, as a container
    assert not (Path(spec.attempt_dir) / "work" / "got").exists()
    assert exited.usage["peak_memory_charged"] <= 64 * _MIB  # a sampler saw 260-428 MiB here
    assert exited.usage["peak_rss"] <= 64 * _MIB
    assert not os.path.exists(started.info["cgroup"])  # removed with the attempt
    assert not os.path.exists(os.path.dirname(started.info["cgroup"]))  # and the group, on close


# Four processes share 120 MB written before they forked: summed RSS is about 480 MB.
SHARED = f"""{PY} -c "
import os, time
data = bytearray(os.urandom(120 * 1024 * 1024))
pids = [os.fork() for _ in range(3)]
if 0 in pids:
    time.sleep(1.5); os._exit(0)
time.sleep(1.5)
for pid in pids:
    os.waitpid(pid, 0)
"
"""


@pytest.mark.parametrize("cgroups", CONTAINMENTS)
def test_memory_shared_between_processes_is_counted_once(root, cgroups):
    spec = make_spec(root, "shared", sh(SHARED), memory_mib=300)
    backend = new_backend(cgroups)
    events = Events(backend)
    try:
        backend.start(spec)
        started = events.wait("shared", AttemptStarted)
        exited = events.wait("shared", AttemptExited, timeout=30)
    finally:
        backend.close()
    expected = "sampled PSS" if not cgroups else started.info["memory_enforcement"]
    assert started.info["memory_enforcement"] == expected
    assert exited.exit_code == 0 and exited.reason is None, read_log(spec.attempt_dir)[0]
    assert exited.usage["samples"] >= 3
    assert 100 * _MIB < exited.usage["peak_rss"] < 300 * _MIB


def test_sampled_memory_limit_still_kills_a_tree_over_it(root):
    spec = make_spec(root, "sampled", [PY, "-c", "import time; x = b'x' * (300 << 20); time.sleep(30)"], memory_mib=100)
    backend = new_backend(cgroups=False)
    events = Events(backend)
    try:
        backend.start(spec)
        started = events.wait("sampled", AttemptStarted)
        exited = events.wait("sampled", AttemptExited)
    finally:
        backend.close()
    assert started.info["memory_enforcement"] == "sampled PSS" and started.info["containment"] == "session"
    assert exited.exit_code == 137 and exited.reason == OOM_REASON


# -- log cap ------------------------------------------------------------------------------------


def test_log_is_capped_keeping_head_and_tail(root):
    # 20,000 numbered lines (about 240 kB) against a 40 kB cap, half of it while the job runs.
    script = "i=0; while [ $i -lt 20000 ]; do echo line-$i; i=$((i+1)); [ $i = 10000 ] && sleep 0.5; done; exit 0"
    spec = make_spec(root, "chatty", sh(script))
    backend = new_backend(max_log_bytes=40_000)
    events = Events(backend)
    try:
        backend.start(spec)
        exited = events.wait("chatty", AttemptExited, timeout=30)
    finally:
        backend.close()
    assert exited.exit_code == 0  # neither blocked nor killed
    text = read_log(spec.attempt_dir)[0].decode()
    assert len(text) <= 40_000
    lines = text.splitlines()
    assert lines[0] == "line-0" and lines[-1] == "line-19999"
    assert "output.log is capped at 40000 bytes" in text
    # What is kept is the head and the tail, each in order and unbroken.
    tail = [line for line in lines if line.startswith("line-")][-100:]
    assert [int(line[5:]) for line in tail] == list(range(19900, 20000))


def test_max_log_bytes_must_not_be_negative():
    with pytest.raises(ValueError, match="max_log_bytes"):
        LocalBackend(max_log_bytes=-1)


# -- job user -----------------------------------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="running jobs as another user needs root")


@needs_root
def test_job_runs_as_the_configured_user(root):
    user = pwd.getpwnam("nobody")
    # Two files in /tmp (world-searchable): one root-only, like the server's credentials, and a
    # readable one that shows the job could read it if the mode allowed.
    secret, readable = (Path(tempfile.mkstemp(prefix="genobatch-test-")[1]) for _ in range(2))
    try:
        secret.write_text("secret")
        secret.chmod(0o600)
        readable.write_text("public")
        readable.chmod(0o644)
        script = f"id -u > uid; id -g > gid; echo $HOME > home; cat {readable}; cat {secret}; exit 0"
        spec = make_spec(root, "asuser", sh(script))
        backend = new_backend(job_user="nobody")
        events = Events(backend)
        try:
            backend.start(spec)
            started = events.wait("asuser", AttemptStarted)
            exited = events.wait("asuser", AttemptExited)
        finally:
            backend.close()
    finally:
        secret.unlink()
        readable.unlink()
    work = Path(spec.attempt_dir) / "work"
    log = read_log(spec.attempt_dir)[0].decode()
    assert exited.exit_code == 0, log
    assert started.info["user"] == "nobody"
    assert int((work / "uid").read_text()) == user.pw_uid and int((work / "gid").read_text()) == user.pw_gid
    assert (work / "home").read_text().strip() == user.pw_dir
    assert work.stat().st_uid == user.pw_uid
    assert "public" in log and "Permission denied" in log and "secret\n" not in log
    assert (Path(spec.attempt_dir) / "exit_status").stat().st_uid == 0  # control files stay the server's


def test_unknown_job_user_is_refused():
    with pytest.raises(ValueError, match="job user 'genobatch-no-such-user' does not exist"):
        LocalBackend(job_user="genobatch-no-such-user")


def test_a_command_that_cannot_join_its_cgroup_never_runs(root):
    # The wrapper as the backend starts it, with a cgroup that does not exist (e.g. removed by
    # someone else): the command must not run outside it, and the attempt is a failed start.
    attempt_dir = root / "nojoin" / "1"
    (attempt_dir / "work").mkdir(parents=True)
    join = str(root / "no-such-cgroup" / "cgroup.procs")
    argv = ["/bin/sh", WRAPPER, str(attempt_dir), "", join, "", "sh", "-c", "echo ran > ran"]
    subprocess.run(argv, cwd=attempt_dir / "work", stdout=subprocess.DEVNULL, timeout=30, check=False)
    assert not (attempt_dir / "work" / "ran").exists()
    backend = new_backend()
    try:
        exited = backend.reconcile(found_after_restart("nojoin", str(attempt_dir)), {})
    finally:
        backend.close()
    assert exited is not None and exited.exit_code is None and exited.status_reason == FAILED_TO_START
    assert "cgroup" in exited.reason
    assert "cannot join the attempt's cgroup" in read_log(str(attempt_dir))[0].decode()

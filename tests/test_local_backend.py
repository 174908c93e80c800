"""The local backend with real processes: exits, environment, pinning, limits, stop, restart."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import sys
import time
from pathlib import Path

import pytest

from genobatch.backends.base import AttemptExited, AttemptSpec, AttemptStarted, BackendEvent
from genobatch.backends.container import container_command, container_name
from genobatch.backends.host import read_log
from genobatch.backends.local import FAILED_TO_START, OOM_REASON, VANISHED_RESTART, LocalBackend

pytestmark = pytest.mark.no_store  # uses no store: the PostgreSQL pass would only repeat it


def found_after_restart(job_id: str, attempt_dir: str) -> AttemptSpec:
    """The spec the engine hands ``reconcile`` for attempt 1 of ``job_id`` after a restart."""
    return AttemptSpec(job_id, 1, (), {}, str(attempt_dir), 1, 0)


PY = sys.executable
HOST_CPUS = tuple(sorted(os.sched_getaffinity(0)))


class Events:
    """Collects a backend's events and waits for the one a test needs."""

    def __init__(self, backend: LocalBackend) -> None:
        self.queue: queue.Queue[BackendEvent] = queue.Queue()
        self.seen: list[BackendEvent] = []
        backend.bind(self.queue.put)

    def wait(self, job_id: str, kind: type, timeout: float = 15.0):
        """The first event of ``kind`` for ``job_id``, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.seen:
                if isinstance(event, kind) and event.job_id == job_id:
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {kind.__name__} for {job_id} within {timeout}s: {self.of(job_id)}")
            with contextlib.suppress(queue.Empty):
                self.seen.append(self.queue.get(timeout=remaining))

    def of(self, job_id: str) -> list[BackendEvent]:
        """Every event seen so far for ``job_id``, in order."""
        return [e for e in self.seen if e.job_id == job_id]


def make_spec(root: Path, job_id: str, command: list[str], **kwargs) -> AttemptSpec:
    kwargs.setdefault("vcpus", 1)
    kwargs.setdefault("memory_mib", 512)
    return AttemptSpec(
        job_id=job_id,
        attempt=kwargs.pop("attempt", 1),
        command=tuple(command),
        environment=kwargs.pop("environment", {}),
        attempt_dir=str(root / job_id / "1"),
        **kwargs,
    )


def sh(script: str) -> list[str]:
    return ["/bin/sh", "-c", script]


def wait_for_file(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.02)


def kill_leftovers(root: Path) -> None:
    """Kill whatever a failed test left running (wrappers and command groups under ``root``)."""
    for pid_file in root.rglob("child.pid"):
        with contextlib.suppress(ValueError, OSError):
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)
    for pid_file in root.rglob("wrapper.pid"):
        with contextlib.suppress(ValueError, OSError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


@pytest.fixture
def root(tmp_path: Path):
    yield tmp_path
    kill_leftovers(tmp_path)


@pytest.fixture
def backend(root: Path):
    b = LocalBackend(monitor_interval_s=0.1)
    yield b
    b.close()


@pytest.fixture
def events(backend: LocalBackend) -> Events:
    return Events(backend)


def run(backend: LocalBackend, events: Events, spec: AttemptSpec, timeout: float = 15.0) -> AttemptExited:
    backend.start(spec)
    return events.wait(spec.job_id, AttemptExited, timeout)


# -- exits, environment, files ------------------------------------------------------------------


def test_success_reports_started_then_exited_with_usage(backend, events, root):
    spec = make_spec(root, "ok", [PY, "-c", "print('hello')"])
    exited = run(backend, events, spec)
    started, last = events.of("ok")
    assert isinstance(started, AttemptStarted) and last is exited
    assert started.info["runtime"] == "host" and started.info["image"] is None
    assert started.info["pid"] > 0 and started.info["child_pid"] > 0 and started.info["hostname"]
    assert exited.exit_code == 0 and exited.reason is None
    assert exited.status_reason == "Essential container in task exited"
    assert exited.at_ms >= started.at_ms - 50  # file and clock times may differ by a tick
    assert {"hostname", "cpu_time_ms", "rchar", "wchar", "realtime_ms"} <= set(exited.usage)
    attempt_dir = Path(spec.attempt_dir)
    meta = json.loads((attempt_dir / "attempt.json").read_text())
    assert meta["job_id"] == "ok" and meta["memory_mib"] == 512
    assert (attempt_dir / "exit_status").read_text().splitlines()[0] == "0"
    if backend.launcher == "wrapper":
        assert int((attempt_dir / "wrapper.pid").read_text()) == started.info["pid"]
    else:  # the persistent launcher starts the command itself: no process in between
        assert started.info["pid"] == started.info["child_pid"] and not (attempt_dir / "wrapper.pid").exists()
    assert int((attempt_dir / "child.pid").read_text()) == started.info["child_pid"]


def test_nonzero_exit_code(backend, events, root):
    exited = run(backend, events, make_spec(root, "fail", sh("exit 3")))
    assert exited.exit_code == 3
    assert exited.status_reason == "Essential container in task exited"


def test_executable_not_found_fails_to_start(backend, events, root):
    exited = run(backend, events, make_spec(root, "nope", ["genobatch-no-such-program", "x"]))
    assert exited.exit_code is None and exited.status_reason == FAILED_TO_START
    assert "not found" in exited.reason
    assert events.of("nope") == [exited]  # it never started


def test_environment_is_minimal_plus_spec(backend, events, root, monkeypatch):
    monkeypatch.setenv("GENOBATCH_TEST_SERVER_ONLY", "secret")
    b = LocalBackend(monitor_interval_s=0.1)  # the inherited environment is taken at construction
    ev = Events(b)
    try:
        script = "env > env.txt; grep SigIgn /proc/self/status > sigign.txt"
        spec = make_spec(root, "env", sh(script), environment={"FOO": "bar baz", "N": "1"})
        assert run(b, ev, spec).exit_code == 0
        # The wrapper runs its helpers under LC_ALL=C; a job's own LC_ALL must survive that.
        locale = make_spec(root, "locale", sh('echo "[$LC_ALL]"'), environment={"LC_ALL": "C.UTF-8"})
        assert run(b, ev, locale).exit_code == 0
    finally:
        b.close()
    assert read_log(locale.attempt_dir)[0] == b"[C.UTF-8]\n"
    lines = (Path(spec.attempt_dir) / "work" / "env.txt").read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if "=" in line)
    assert env["FOO"] == "bar baz" and env["N"] == "1"
    assert env["PATH"] == os.environ["PATH"]
    assert env["AWS_BATCH_JOB_ID"] == "env" and env["AWS_BATCH_JOB_ATTEMPT"] == "1"
    assert "GENOBATCH_TEST_SERVER_ONLY" not in env and "LC_ALL" not in env
    # No signal is ignored, although background commands of a shell start with SIGINT ignored.
    assert int((Path(spec.attempt_dir) / "work" / "sigign.txt").read_text().split()[1], 16) == 0


def test_working_directories_are_isolated(backend, events, root):
    specs = [make_spec(root, f"wd{i}", sh(f"pwd > here.txt; echo {i} > same.txt")) for i in range(2)]
    for spec in specs:
        backend.start(spec)
    for i, spec in enumerate(specs):
        assert events.wait(spec.job_id, AttemptExited).exit_code == 0
        work = Path(spec.attempt_dir) / "work"
        assert (work / "here.txt").read_text().strip() == str(work)
        assert (work / "same.txt").read_text().strip() == str(i)


def test_log_captures_stdout_and_stderr(backend, events, root):
    spec = make_spec(root, "log", sh("echo out; echo err >&2; echo out2"))
    assert run(backend, events, spec).exit_code == 0
    data, offset = read_log(spec.attempt_dir)
    assert data == b"out\nerr\nout2\n" and offset == len(data)
    assert read_log(spec.attempt_dir, 4, 4) == (b"err\n", 8)
    assert read_log(spec.attempt_dir, offset) == (b"", offset)
    assert read_log(str(root / "missing"), 0) == (b"", 0)


@pytest.mark.skipif(len(HOST_CPUS) < 2, reason="needs two CPUs")
def test_cpu_affinity_follows_spec(backend, events, root):
    probe = [PY, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"]
    pinned = make_spec(root, "pin", probe, cpus=(HOST_CPUS[-1],))
    whole = make_spec(root, "all", probe, cpus=HOST_CPUS)
    for spec in (pinned, whole):
        assert run(backend, events, spec).exit_code == 0
    assert read_log(pinned.attempt_dir)[0].decode().strip() == str([HOST_CPUS[-1]])
    assert read_log(whole.attempt_dir)[0].decode().strip() == str(list(HOST_CPUS))


def test_gpu_pinning_environment(root):
    b = LocalBackend(gpus=4, monitor_interval_s=0.1)
    ev = Events(b)
    try:
        assert b.inventory().gpus == (0, 1, 2, 3)
        probe = sh('echo "[$CUDA_VISIBLE_DEVICES] [$NVIDIA_VISIBLE_DEVICES] [${CUDA_DEVICE_ORDER-}]"')
        # The job cannot widen its own set by asking for other devices.
        gpu = make_spec(root, "gpu", probe, gpus=(1, 3), environment={"CUDA_VISIBLE_DEVICES": "0,1,2,3"})
        cpu = make_spec(root, "cpu", probe)
        for spec in (gpu, cpu):
            assert run(b, ev, spec).exit_code == 0
    finally:
        b.close()
    assert read_log(gpu.attempt_dir)[0] == b"[1,3] [1,3] [PCI_BUS_ID]\n"
    assert read_log(cpu.attempt_dir)[0] == b"[] [void] []\n"


def test_inventory_defaults_and_limits():
    b = LocalBackend(cpus=1, memory_mib=1000, gpus=0)
    try:
        assert b.inventory().cpus == HOST_CPUS[:1]
        assert b.inventory().memory_mib == 1000 and b.inventory().gpus == ()
    finally:
        b.close()
    b = LocalBackend()
    try:
        inv = b.inventory()
        assert inv.cpus == HOST_CPUS and inv.memory_mib > 0  # no NVML here: no GPUs
    finally:
        b.close()


def test_usage_of_a_busy_job(backend, events, root):
    # Burn CPU time, not wall time: the machine may be shared with other work.
    burn = "import time\nwhile time.process_time() < 0.5: pass\nopen('f', 'wb').write(b'x' * 1000000)"
    exited = run(backend, events, make_spec(root, "busy", [PY, "-c", burn]))
    usage = exited.usage
    assert exited.exit_code == 0
    assert usage["samples"] >= 1 and usage["peak_rss"] > 1_000_000 and usage["peak_vmem"] >= usage["peak_rss"]
    assert usage["cpu_time_ms"] >= 450 and usage["realtime_ms"] >= 450
    assert 0 < usage["pct_cpu"] <= 110
    assert usage["wchar"] >= 1_000_000


# -- limits and signals ---------------------------------------------------------------------------


def test_memory_limit_kills_the_tree(backend, events, root):
    # The allocation happens in a grandchild, to show the whole tree is measured and killed.
    hog = f"{PY} -c \"import time; x = b'x' * (300 * 1024 * 1024); time.sleep(30)\"; echo survived"
    spec = make_spec(root, "oom", sh(hog), memory_mib=100)
    exited = run(backend, events, spec)
    assert exited.exit_code == 137
    assert exited.reason == OOM_REASON
    assert b"survived" not in read_log(spec.attempt_dir)[0]
    assert (Path(spec.attempt_dir) / "oom_killed").exists()


def test_stop_delivers_sigterm(backend, events, root):
    script = "trap 'echo term > got_term; exit 42' TERM; echo > ready; sleep 30 & wait"
    spec = make_spec(root, "term", sh(script))
    backend.start(spec)
    events.wait("term", AttemptStarted)
    wait_for_file(Path(spec.attempt_dir) / "work" / "ready")
    backend.stop("term", 1, grace_s=10)
    backend.stop("term", 1, grace_s=10)  # idempotent
    exited = events.wait("term", AttemptExited)
    assert exited.exit_code == 42
    assert (Path(spec.attempt_dir) / "work" / "got_term").read_text() == "term\n"
    backend.stop("term", 1, grace_s=0)  # already finished: no-op
    backend.stop("unknown", 1)
    assert len(events.of("term")) == 2


def test_stop_escalates_to_sigkill_after_grace(backend, events, root):
    spec = make_spec(root, "stubborn", sh("trap '' TERM; echo > ready; sleep 30"))
    backend.start(spec)
    events.wait("stubborn", AttemptStarted)
    wait_for_file(Path(spec.attempt_dir) / "work" / "ready")
    t0 = time.monotonic()
    backend.stop("stubborn", 1, grace_s=1.0)
    exited = events.wait("stubborn", AttemptExited)
    elapsed = time.monotonic() - t0
    assert exited.exit_code == 137
    assert 0.9 <= elapsed < 5


def test_stop_right_after_start_is_not_lost(backend, events, root):
    # Signalled the moment AttemptStarted arrives, the command may not have called setsid yet.
    ids = [f"quick{i}" for i in range(10)]
    for job_id in ids:
        backend.start(make_spec(root, job_id, ["sleep", "30"]))
    for job_id in ids:
        events.wait(job_id, AttemptStarted)
        backend.stop(job_id, 1, grace_s=30)
    for job_id in ids:
        assert events.wait(job_id, AttemptExited, timeout=10).exit_code == 143


def test_stop_while_queued_or_starting(backend, events, root):
    # Stopped before or while it is spawned: either it never starts, or it starts and is stopped.
    ids = [f"early{i}" for i in range(10)]
    for job_id in ids:
        backend.start(make_spec(root, job_id, ["sleep", "30"]))
        backend.stop(job_id, 1, grace_s=30)
    for job_id in ids:
        exited = events.wait(job_id, AttemptExited, timeout=10)
        seen = events.of(job_id)
        if len(seen) == 1:
            assert exited.exit_code is None and exited.status_reason == "Task stopped before it started"
        else:
            assert isinstance(seen[0], AttemptStarted) and exited.exit_code == 143


def test_wrapper_forwards_sigterm_and_waits_for_the_real_exit(backend, events, root):
    if backend.launcher != "wrapper":
        pytest.skip("the wrapper's own signal forwarding: the persistent launcher has no process in between")
    # The command takes a while to exit after TERM: the wrapper's interrupted wait must be resumed
    # so that the command's own code (9) is recorded, not the 143 of the interrupted wait.
    script = "trap 'sleep 0.3; exit 9' TERM; echo > ready; sleep 30 & wait"
    spec = make_spec(root, "fwd", sh(script))
    backend.start(spec)
    started = events.wait("fwd", AttemptStarted)
    wait_for_file(Path(spec.attempt_dir) / "work" / "ready")
    os.kill(started.info["pid"], signal.SIGTERM)
    exited = events.wait("fwd", AttemptExited)
    assert exited.exit_code == 9
    assert "signal=TERM" in (Path(spec.attempt_dir) / "exit_status").read_text()


# -- restart -------------------------------------------------------------------------------------


def start_and_abandon(root: Path, spec: AttemptSpec) -> AttemptStarted:
    """Start an attempt with one backend instance and close it, as a crashing server would."""
    first = LocalBackend(monitor_interval_s=0.1)
    ev = Events(first)
    try:
        first.start(spec)
        return ev.wait(spec.job_id, AttemptStarted)
    finally:
        first.close()


def test_reconcile_recovers_exit_that_happened_while_down(root):
    spec = make_spec(root, "down", sh("sleep 0.3; exit 5"))
    started = start_and_abandon(root, spec)
    wait_for_file(Path(spec.attempt_dir) / "exit_status")
    second = LocalBackend(monitor_interval_s=0.1)
    try:
        exited = second.reconcile(found_after_restart("down", spec.attempt_dir), started.info)
    finally:
        second.close()
    assert exited is not None and exited.exit_code == 5
    assert exited.status_reason == "Essential container in task exited"
    assert exited.usage["realtime_ms"] >= 200


def test_reconcile_adopts_a_running_attempt(root):
    spec = make_spec(root, "alive", sh("sleep 2; exit 7"))
    started = start_and_abandon(root, spec)
    second = LocalBackend(monitor_interval_s=0.1)
    ev = Events(second)
    try:
        assert second.reconcile(found_after_restart("alive", spec.attempt_dir), started.info) is None
        assert second.reconcile(found_after_restart("alive", spec.attempt_dir), started.info) is None  # already watched
        exited = ev.wait("alive", AttemptExited)
        assert exited.exit_code == 7
        assert exited.usage["samples"] >= 1  # the monitor watches adopted attempts too
    finally:
        second.close()


def test_stop_and_memory_limit_work_for_adopted_attempts(root):
    stoppable = make_spec(root, "adopt-stop", sh("echo > ready; sleep 30"))
    hog = [PY, "-c", "import time; open('ready', 'w'); time.sleep(1.0); x = b'x' * (300 << 20); time.sleep(30)"]
    hungry = make_spec(root, "adopt-oom", hog, memory_mib=100)
    infos = {s.job_id: start_and_abandon(root, s).info for s in (stoppable, hungry)}
    second = LocalBackend(monitor_interval_s=0.1)
    ev = Events(second)
    try:
        for spec in (stoppable, hungry):
            wait_for_file(Path(spec.attempt_dir) / "work" / "ready")
            assert second.reconcile(found_after_restart(spec.job_id, spec.attempt_dir), infos[spec.job_id]) is None
        second.stop("adopt-stop", 1, grace_s=5)
        assert ev.wait("adopt-stop", AttemptExited).exit_code == 143
        oom = ev.wait("adopt-oom", AttemptExited)
        assert oom.exit_code == 137 and oom.reason == OOM_REASON
    finally:
        second.close()


def test_reconcile_reports_a_vanished_attempt(root):
    spec = make_spec(root, "gone", sh("echo > ready; sleep 30"))
    started = start_and_abandon(root, spec)
    wait_for_file(Path(spec.attempt_dir) / "work" / "ready")
    # The process that would record the exit (wrapper, or persistent launcher) goes first.
    host_process = started.info.get("launcher_pid") or started.info["pid"]
    os.kill(host_process, signal.SIGKILL)
    os.killpg(started.info["child_pid"], signal.SIGKILL)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{host_process}/cmdline").exists() and Path(f"/proc/{host_process}/cmdline").read_bytes():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    second = LocalBackend(monitor_interval_s=0.1)
    try:
        exited = second.reconcile(found_after_restart("gone", spec.attempt_dir), started.info)
        # A live process that is not our wrapper (pid reuse) is not adopted either.
        (root / "other").mkdir()
        stranger = second.reconcile(found_after_restart("other", str(root / "other")), {"pid": os.getpid()})
    finally:
        second.close()
    assert exited is not None and exited.exit_code is None
    assert exited.status_reason == VANISHED_RESTART
    assert stranger is not None and stranger.exit_code is None


# -- containers ----------------------------------------------------------------------------------


def test_container_command_line():
    spec = AttemptSpec(
        job_id="arr:3",
        attempt=2,
        command=("bwa", "mem", "ref.fa"),
        environment={"A": "1"},
        attempt_dir="/x",
        vcpus=2,
        memory_mib=2048,
        cpus=(2, 3),
        gpus=(0, 1),
        image="biocontainers/bwa:0.7",
    )
    name = container_name(spec.job_id, spec.attempt)
    assert name == "gb-arr-3-2"
    cmd = container_command("/usr/bin/docker", spec, name=name, workdir="/x/work", env_keys=["A", "B"])
    assert cmd == [
        "/usr/bin/docker", "run", "--rm", "--name", "gb-arr-3-2",
        "--cpuset-cpus", "2,3", "--memory", "2048m", "--memory-swap", "2048m",
        "--gpus", '"device=0,1"', "-e", "A", "-e", "B",
        "-v", "/x/work:/x/work", "-w", "/x/work", "biocontainers/bwa:0.7", "bwa", "mem", "ref.fa",
    ]  # fmt: skip
    podman = container_command("podman", spec, name=name, workdir="/x/work", env_keys=[])
    assert podman[podman.index("--device") : podman.index("--device") + 4] == [
        "--device", "nvidia.com/gpu=0", "--device", "nvidia.com/gpu=1",
    ]  # fmt: skip


def test_container_runtime_path_with_a_fake_runtime(root):
    # A stand-in "docker" that prints its arguments and the variables it was asked to pass.
    fake = root / "bin" / "docker"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\nfor a in "$@"; do echo "arg:$a"; done\necho "A=$A"\n')
    fake.chmod(0o755)
    b = LocalBackend(container_runtime=str(fake), monitor_interval_s=0.1)
    ev = Events(b)
    try:
        spec = make_spec(root, "ctr", ["echo", "hi"], image="alpine:3", environment={"A": "1"})
        assert run(b, ev, spec).exit_code == 0
        started = ev.wait("ctr", AttemptStarted)
        host = make_spec(root, "noimage", ["true"])
        assert run(b, ev, host).exit_code == 0
    finally:
        b.close()
    assert started.info["runtime"] == "docker" and started.info["image"] == "alpine:3"
    assert ev.wait("noimage", AttemptStarted).info["runtime"] == "host"
    lines = read_log(spec.attempt_dir)[0].decode().splitlines()
    assert lines[:5] == ["arg:run", "arg:--rm", "arg:--name", "arg:gb-ctr-1", "arg:--memory"]
    assert "arg:-e" in lines and "arg:A" in lines and "arg:PATH" not in lines
    assert lines[-3:] == ["arg:echo", "arg:hi", "A=1"]


def test_missing_container_runtime_runs_on_the_host(root):
    b = LocalBackend(container_runtime="genobatch-no-such-runtime", monitor_interval_s=0.1)
    ev = Events(b)
    try:
        spec = make_spec(root, "hostrun", sh("echo on host"), image="alpine:3")
        assert run(b, ev, spec).exit_code == 0
    finally:
        b.close()
    assert ev.wait("hostrun", AttemptStarted).info["runtime"] == "host"
    assert read_log(spec.attempt_dir)[0] == b"on host\n"


# -- throughput ----------------------------------------------------------------------------------


def test_throughput_smoke(backend, events, root):
    n = 200
    specs = [make_spec(root, f"t{i}", ["true"]) for i in range(n)]
    t0 = time.perf_counter()
    for spec in specs:
        backend.start(spec)
    codes = [events.wait(spec.job_id, AttemptExited, timeout=60).exit_code for spec in specs]
    elapsed = time.perf_counter() - t0
    assert codes == [0] * n
    print(f"\nlocal backend: {n} `true` attempts in {elapsed:.2f}s = {n / elapsed:.0f} attempts/s")

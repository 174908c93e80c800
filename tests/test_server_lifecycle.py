"""The server's life: one server per data directory and database, clean stops, start failures that
harm nothing, ``server --detach|status|stop``, --no-auth exposure, file modes and the unknown-key hint.

Every test runs the real ``genobatch server`` as a subprocess (tests/harness.py).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from harness import POSTGRES, Server, free_port, fresh_database_url, launch, wait_for

from genobatch.cli.main import cli
from genobatch.cli.server_process import healthy

START_TIMEOUT_S = 60


def genobatch(*args: str, timeout: float = START_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run the CLI as a subprocess (its own process: a refused server must exit, not hang)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENOBATCH_ENDPOINT", "GENOBATCH_ACCESS"))}
    return subprocess.run(
        [sys.executable, "-m", "genobatch", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def cli_run(*args: str) -> Result:
    """Run a CLI command that starts no server in-process (saves an interpreter start)."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def server_file(server: Server) -> dict:
    return json.loads((server.data_dir / "server.json").read_text())


def shared_database_url(tmp_path: Path) -> str:
    """A database two data directories can both point at: PostgreSQL in that pass, else a SQLite file."""
    return fresh_database_url() or f"sqlite:///{tmp_path / 'shared' / 'store.db'}"


# ----------------------------------------------------------------------------------- one server per store


def test_second_server_on_the_same_data_dir_refuses_to_start(tmp_path_factory) -> None:
    first = launch(tmp_path_factory)
    try:
        announced = server_file(first)
        cmd = ["server", "--data-dir", str(first.data_dir), "--port", str(free_port())]
        if first.db_url:
            cmd += ["--db", first.db_url]
        second = genobatch(*cmd)
        assert second.returncode == 1, second.stdout + second.stderr
        assert "another genobatch server is running" in second.stderr
        assert f"pid {first.proc.pid}" in second.stderr and first.endpoint in second.stderr
        # The refused server changed nothing: the first one still runs and is still announced.
        assert server_file(first) == announced
        assert healthy(first.endpoint)
        first.client().describe_job_queues()
    finally:
        first.stop()


def test_second_data_dir_on_the_same_database_refuses_to_start(tmp_path_factory, tmp_path) -> None:
    url = shared_database_url(tmp_path)
    first = Server(tmp_path_factory.mktemp("first"), free_port(), url).start()
    try:
        other_port = free_port()
        second = genobatch("server", "--data-dir", str(tmp_path / "second"), "--port", str(other_port), "--db", url)
        assert second.returncode == 1, second.stdout + second.stderr
        assert "another genobatch server" in second.stderr and "database" in second.stderr
        assert not healthy(f"http://127.0.0.1:{other_port}")
        assert not (tmp_path / "second" / "server.json").exists()
        assert healthy(first.endpoint)
    finally:
        first.stop()


@pytest.mark.slow
def test_a_crashed_server_leaves_no_lock_behind(tmp_path_factory, tmp_path) -> None:
    url = shared_database_url(tmp_path)
    server = Server(tmp_path_factory.mktemp("crash"), free_port(), url).start()
    batch = server.client()
    job = batch.submit_job(
        jobName="survivor",
        jobQueue="default",
        jobDefinition=batch.register_job_definition(
            jobDefinitionName="sleepy",
            type="container",
            containerProperties={"image": "x", "command": ["sleep", "2"], "vcpus": 1, "memory": 64},
        )["jobDefinitionArn"],
    )["jobId"]
    wait_for(batch, job, ("RUNNING",))
    server.stop(kill=True)  # the job keeps running: it must not keep the lock either
    assert (server.data_dir / "server.json").exists()  # stale, left by the crash
    server.start()
    assert server_file(server)["pid"] == server.proc.pid
    assert wait_for(server.client(), job)["status"] == "SUCCEEDED"
    server.stop()


# ----------------------------------------------------------------------------------- stops and failed starts


def test_sigterm_stops_the_engine_and_removes_server_json(tmp_path_factory) -> None:
    server = launch(tmp_path_factory)
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=30) == 0, server.log()
    assert not (server.data_dir / "server.json").exists()
    assert "genobatch server stopped" in server.log()


def test_a_start_on_a_busy_port_keeps_the_running_servers_file(tmp_path_factory, tmp_path) -> None:
    running = launch(tmp_path_factory)
    try:
        announced = server_file(running)
        other = tmp_path / "other"
        failed = genobatch("server", "--data-dir", str(other), "--port", str(running.port))
        assert failed.returncode == 1
        assert f"port {running.port} on 127.0.0.1 is already in use" in failed.stderr
        assert server_file(running) == announced
        assert not (other / "server.json").exists()
    finally:
        running.stop()


@pytest.mark.slow
def test_detach_status_and_stop(tmp_path) -> None:
    data_dir, port = tmp_path / "detached", free_port()
    endpoint = f"http://127.0.0.1:{port}"
    started = genobatch("--data-dir", str(data_dir), "server", "--detach", "--port", str(port))
    assert started.returncode == 0, started.stderr
    pid = json.loads((data_dir / "server.json").read_text())["pid"]
    try:
        assert f"running at {endpoint} (pid {pid}" in started.stdout
        assert "server stop" in started.stdout
        assert healthy(endpoint)
        status = cli_run("--data-dir", str(data_dir), "server", "status")
        assert status.exit_code == 0, status.output
        assert f"pid {pid}" in status.stdout and f"{endpoint} (answering)" in status.stdout
        again = genobatch("--data-dir", str(data_dir), "server", "--detach", "--port", str(free_port()))
        assert again.returncode == 1 and "already running" in again.stderr
        misuse = cli_run("--data-dir", str(data_dir), "server", "--port", "1", "status")
        assert misuse.exit_code == 2 and "--port" in misuse.stderr
    finally:
        stopped = cli_run("--data-dir", str(data_dir), "server", "stop")
    assert stopped.exit_code == 0, stopped.output
    assert f"stopped the genobatch server (pid {pid}" in stopped.stdout
    assert not healthy(endpoint)
    assert not (data_dir / "server.json").exists()
    status = cli_run("--data-dir", str(data_dir), "server", "status")
    assert status.exit_code == 3 and "no genobatch server is running" in status.stdout


@pytest.mark.slow
def test_detach_reports_why_the_server_did_not_start(tmp_path_factory, tmp_path) -> None:
    running = launch(tmp_path_factory)
    try:
        failed = genobatch("--data-dir", str(tmp_path / "x"), "server", "--detach", "--port", str(running.port))
        assert failed.returncode == 1
        assert "the server did not start" in failed.stderr and "already in use" in failed.stderr
    finally:
        running.stop()


def test_stop_removes_a_stale_server_file(tmp_path) -> None:
    data_dir = tmp_path / "stale"
    data_dir.mkdir()
    (data_dir / "server.json").write_text(json.dumps({"endpoint": "http://127.0.0.1:1", "pid": 999999}))
    status = cli_run("--data-dir", str(data_dir), "server", "status")
    assert status.exit_code == 3 and "stale" in status.stdout
    stopped = cli_run("--data-dir", str(data_dir), "server", "stop")
    assert stopped.exit_code == 0 and "removed the stale server.json of pid 999999" in stopped.stdout
    assert not (data_dir / "server.json").exists()


@pytest.mark.parametrize(
    ("option", "value", "problem"),
    [
        ("--keep-logs", "3x", "is not a duration like 30d, 12h, 10m or 90s or 'forever'"),
        ("--keep-work", "-1h", "is not a duration"),
        ("--retention-interval", "forever", "is not a duration like 30d, 12h, 10m or 90s"),
        ("--keep-logs-jobs", "many", "is not a number of jobs or 'unlimited'"),
    ],
)
def test_bad_retention_options_name_the_option(tmp_path, option: str, value: str, problem: str) -> None:
    result = cli_run("--data-dir", str(tmp_path / "d"), "server", option, value)
    assert result.exit_code == 2
    assert option in result.stderr and problem in result.stderr
    assert not (tmp_path / "d").exists()


# ----------------------------------------------------------------------------------- exposure and secrets


def test_no_auth_on_a_reachable_address_is_refused(tmp_path) -> None:
    port = free_port()
    refused = genobatch(
        "server", "--data-dir", str(tmp_path / "d"), "--no-auth", "--host", "0.0.0.0", "--port", str(port)
    )
    assert refused.returncode == 1
    assert "--allow-unauthenticated-remote" in refused.stderr and "run commands" in refused.stderr
    assert not healthy(f"http://127.0.0.1:{port}")
    assert not (tmp_path / "d" / "server.json").exists()


@pytest.mark.slow
def test_no_auth_on_a_reachable_address_when_forced_warns(tmp_path_factory) -> None:
    server = Server(tmp_path_factory.mktemp("open"), free_port(), fresh_database_url())
    server.args = ["--no-auth", "--host", "0.0.0.0", "--allow-unauthenticated-remote"]
    server.start()
    try:
        assert "AUTHENTICATION IS OFF" in server.log()
    finally:
        server.stop()


def test_files_are_private_and_an_open_data_dir_is_reported(tmp_path_factory, tmp_path) -> None:
    data_dir = tmp_path / "open"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)  # as if created by hand (or by an earlier version) under umask 022
    (data_dir / "server.log").touch(mode=0o644)
    server = Server(data_dir, free_port(), fresh_database_url()).start()
    try:
        batch = server.client()
        definition = batch.register_job_definition(
            jobDefinitionName="hello",
            type="container",
            containerProperties={"image": "x", "command": ["echo", "hi"], "vcpus": 1, "memory": 64},
        )["jobDefinitionArn"]
        job = batch.submit_job(jobName="hello", jobQueue="default", jobDefinition=definition)["jobId"]
        assert wait_for(batch, job)["status"] == "SUCCEEDED"
        private = [data_dir / "credentials.json", data_dir / "server.json", data_dir / "server.log"]
        if not POSTGRES:
            private.append(data_dir / "genobatch.db")
        attempt = data_dir / "jobs" / job / "1"
        private += [attempt, attempt / "output.log", attempt / "exit_status"]
        modes = {str(path.relative_to(data_dir)): oct(stat.S_IMODE(path.stat().st_mode)) for path in private}
        assert all(int(mode, 8) & 0o077 == 0 for mode in modes.values()), modes
        assert f"data directory {data_dir} has mode 755" in server.log()
    finally:
        server.stop()


@pytest.mark.slow
def test_a_new_data_dir_is_private(tmp_path) -> None:
    data_dir = tmp_path / "new" / "data"
    started = genobatch("--data-dir", str(data_dir), "server", "--detach", "--port", str(free_port()))
    try:
        assert started.returncode == 0, started.stderr
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE((data_dir / "server.log").stat().st_mode) == 0o600
        assert "has mode" not in (data_dir / "server.log").read_text()
    finally:
        genobatch("--data-dir", str(data_dir), "server", "stop")


# ----------------------------------------------------------------------------------- the CLI's hints


def test_unknown_key_names_the_data_dir_and_endpoint(tmp_path_factory, tmp_path) -> None:
    server = launch(tmp_path_factory)
    try:
        other = tmp_path / "other"
        result = cli_run("--data-dir", str(other), "--endpoint", server.endpoint, "jobs")
        assert result.exit_code == 1
        assert "UnrecognizedClientException" in result.stderr
        assert f"the server at {server.endpoint} does not know access key" in result.stderr
        assert f"{other}/credentials.json" in result.stderr
        assert f"not the server of data directory {other} (no server is running for it)" in result.stderr
        assert "server --detach --port" in result.stderr
        logs = cli_run("--data-dir", str(other), "--endpoint", server.endpoint, "logs", "some-job")
        assert logs.exit_code == 1 and f"not the server of data directory {other}" in logs.stderr
    finally:
        server.stop()


@pytest.mark.slow
def test_status_probes_do_not_make_a_starting_server_refuse(tmp_path) -> None:
    """A lock probe by status/stop must not make a server starting at that moment refuse."""
    data_dir, port = tmp_path / "race", free_port()
    data_dir.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "genobatch", "server", "--data-dir", str(data_dir), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not healthy(f"http://127.0.0.1:{port}"):
            # Probe the lock as fast as status would, all through the server's start.
            genobatch("--data-dir", str(data_dir), "server", "status")
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)

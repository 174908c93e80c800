"""The terminal views a new user meets, run as the real CLI against a real server at normal widths."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid

import pytest
from harness import shell_definition, spot_queue, wait_for
from rich.console import Console

from genobatch.cli.render import jobs_table


def cli(server, *args: str, columns: int = 80, check: bool = True) -> subprocess.CompletedProcess:
    """``genobatch ARGS`` as a subprocess with a terminal ``columns`` wide (COLUMNS, as a shell exports it)."""
    command = [sys.executable, "-m", "genobatch", "--data-dir", str(server.data_dir), "--endpoint", server.endpoint]
    env = {**server.env(), "COLUMNS": str(columns)}
    result = subprocess.run([*command, *args], capture_output=True, text=True, timeout=120, env=env)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def jobs(genobatch_server, batch):
    """A job killed at its memory limit, a CPU-busy one, a 3-sample array, a job on a second queue, and a
    job left waiting on a dependency that does not end (cancelled at teardown)."""
    tag = uuid.uuid4().hex[:4]  # short names: at 80 columns a long one wraps inside its cell
    hog = shell_definition(batch, f"hog-{tag}", "python3 -c \"x = b'x' * (400 * 1024 * 1024)\"", memory=64)
    busy = shell_definition(
        batch,
        f"busy-{tag}",
        'python3 -c "import time; t = time.process_time(); x = 0\nwhile time.process_time() - t < 0.6: x += 1"',
    )
    child = shell_definition(batch, f"child-{tag}", 'echo "sample $AWS_BATCH_JOB_ARRAY_INDEX"')
    sleeper = shell_definition(batch, f"sleep-{tag}", "sleep 120")
    ids = {
        "hog": batch.submit_job(jobName=f"hog-{tag}", jobQueue="default", jobDefinition=hog)["jobId"],
        "busy": batch.submit_job(jobName=f"busy-{tag}", jobQueue="default", jobDefinition=busy)["jobId"],
        "array": batch.submit_job(
            jobName=f"arr-{tag}",
            jobQueue="default",
            jobDefinition=child,
            arrayProperties={"size": 3},
            tags={"genobatch:sample-prefix": "sample"},
        )["jobId"],
    }
    other_queue, _ = spot_queue(batch, "views")
    ids["other"] = batch.submit_job(jobName=f"other-{tag}", jobQueue=other_queue, jobDefinition=child)["jobId"]
    for key in ("hog", "busy", "array", "other"):
        wait_for(batch, ids[key], timeout=120)
    ids["sleeper"] = batch.submit_job(jobName=f"sleeper-{tag}", jobQueue="default", jobDefinition=sleeper)["jobId"]
    ids["waiting"] = batch.submit_job(
        jobName=f"waits-{tag}", jobQueue="default", jobDefinition=child, dependsOn=[{"jobId": ids["sleeper"]}]
    )["jobId"]
    ids["tag"] = tag
    yield ids
    for key in ("sleeper", "waiting"):
        batch.terminate_job(jobId=ids[key], reason="test over")


def test_jobs_at_80_columns_keeps_name_status_exit_reason_and_usage(genobatch_server, jobs):
    result = cli(genobatch_server, "jobs")  # no --queue: every queue
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    header = lines[0].split()
    assert header[:3] == ["JOB", "ID", "NAME"] and header[-1] == "REASON"
    for column in ("STATUS", "EXIT", "ELAPSED", "CPU", "MAXMEM"):
        assert column in header, header
    text = result.stdout
    assert f"other-{jobs['tag']}" in text, text  # the second queue's job is listed without --queue
    hog = next(line for line in lines if f"hog-{jobs['tag']}" in line)
    assert "FAILED OOM" in hog and "137" in hog, hog
    assert jobs["hog"][:8] in hog and jobs["hog"] not in hog  # the id is shortened, not a dropped column
    busy = next(line for line in lines if f"busy-{jobs['tag']}" in line)
    cpu = re.search(r" (\d+):(\d\d\.\d) ", busy)  # sacct's TotalCPU style, M:SS.s
    assert cpu and float(cpu.group(2)) >= 0.5, busy  # it burnt 0.6 s of CPU
    assert "SUCCEEDED" in busy and re.search(r"\d+(\.\d)?[KMG]\b", busy), busy
    assert re.search(rf"arr-{jobs['tag']}(\s+|[^\n]*\n\s+)\[3\]", text), text  # [3] may wrap in its cell


def test_jobs_wide_at_120_columns_shows_whole_ids(genobatch_server, jobs):
    result = cli(genobatch_server, "jobs", "--wide", columns=120)
    header = result.stdout.splitlines()[0]
    assert jobs["hog"] in result.stdout and "STARTED" in header and "QUEUE" in header
    assert all(len(line) <= 120 for line in result.stdout.splitlines())


def test_array_children_show_index_and_sample(genobatch_server, jobs):
    result = cli(genobatch_server, "jobs", "--array", jobs["array"])
    for index in range(3):
        assert re.search(rf"arr-{jobs['tag']}\[{index}\](\s+|[^\n]*\n\s+)sample{index}", result.stdout), result.stdout
    children = [line for line in result.stdout.splitlines() if f"arr-{jobs['tag']}[" in line]
    # Children have their own measured usage (an echo is too short for a memory sample, not for CPU time).
    assert len(children) == 3 and all(re.search(r" \d+:\d\d\.\d ", line) for line in children), children


def test_describe_says_the_command_ran_on_the_host(genobatch_server, jobs):
    result = cli(genobatch_server, "describe", jobs["busy"], columns=120)
    flat = " ".join(result.stdout.split())
    assert "execution" in flat
    assert "on the host" in flat and "the image busybox was recorded, not used" in flat, flat


def test_describe_at_80_columns_cuts_nothing(genobatch_server, jobs):
    """The definition's ARN and the log stream fold onto a second line instead of ending in "…"."""
    result = cli(genobatch_server, "describe", jobs["busy"])
    assert "…" not in result.stdout and max(len(line) for line in result.stdout.splitlines()) <= 80, result.stdout
    folded = "".join(line.strip("│ ") for line in result.stdout.splitlines())
    assert f"job-definition/busy-{jobs['tag']}:1" in folded and "CPU IDS" in result.stdout, result.stdout


def test_logs_of_an_array_parent_says_which_logs_to_read(genobatch_server, jobs):
    result = cli(genobatch_server, "logs", jobs["array"], check=False)
    assert result.returncode == 1
    assert "is an array job of 3 children" in result.stderr and f"genobatch logs {jobs['array']}:0" in result.stderr
    child = cli(genobatch_server, "logs", f"{jobs['array']}:2")
    assert child.stdout == "sample 2\n"


def test_the_short_ids_a_narrow_listing_prints_are_accepted(genobatch_server, jobs):
    """At 80 columns ids read ``5c02350b…:2``: what the listing shows must work as an id (they said "no such job",
    and ``jobs --array`` printed an empty table for them or for any unknown id)."""
    listing = cli(genobatch_server, "jobs", "--array", jobs["array"]).stdout
    short_child = re.search(r"^(\w{8}…:2) ", listing, re.M).group(1)
    assert cli(genobatch_server, "logs", short_child).stdout == "sample 2\n"
    short_parent = short_child.split(":")[0]
    children = cli(genobatch_server, "jobs", "--array", short_parent.rstrip("…")).stdout
    assert len([line for line in children.splitlines() if f"arr-{jobs['tag']}[" in line]) == 3, children
    described = cli(genobatch_server, "describe", jobs["busy"][:8] + "…", columns=120).stdout
    assert jobs["busy"] in described and f"busy-{jobs['tag']}" in described
    unknown = cli(genobatch_server, "jobs", "--array", "0000dead", check=False)
    assert unknown.returncode == 1 and "no such job: 0000dead" in unknown.stderr and unknown.stdout == ""


def test_logs_of_an_attempt_without_output_says_so_and_how_it_ended(genobatch_server, jobs):
    """Killed at its memory limit before printing anything: silence read as a broken command."""
    result = cli(genobatch_server, "logs", jobs["hog"])
    assert result.stdout == ""
    assert f"of {jobs['hog']} wrote no output (FAILED, exit code 137, OutOfMemoryError" in result.stderr, result.stderr


def test_logs_of_a_waiting_job_says_why_it_waits(genobatch_server, jobs):
    result = cli(genobatch_server, "logs", jobs["waiting"])
    assert result.stdout == ""
    assert f"{jobs['waiting']} is PENDING: waiting for its dependencies ({jobs['sleeper']})" in result.stderr


def test_native_wraps_the_native_endpoints(genobatch_server, jobs):
    detail = json.loads(cli(genobatch_server, "native", "GET", f"jobs/{jobs['busy']}").stdout)
    assert detail["jobId"] == jobs["busy"] and detail["attempts"][0]["execution"]["runtime"] == "host"
    child = json.loads(cli(genobatch_server, "native", "get", f"/genobatch/v1/jobs/{jobs['array']}:1/logs").stdout)
    assert child["data"] == "sample 1\n"
    results = json.loads(cli(genobatch_server, "native", "GET", "runs/results", "queue=default").stdout)
    assert {"samples", "errors", "metrics"} <= set(results)
    bad = cli(genobatch_server, "native", "GET", "runs", "run", check=False)
    assert bad.returncode == 1 and "'run' must be KEY=VALUE" in bad.stderr
    missing = cli(genobatch_server, "native", "GET", "runs", check=False)
    assert missing.returncode == 1 and "exactly one of run, tag or queue" in missing.stderr


def test_timeout_and_oom_are_marked_in_the_listing():
    """The marks come from the reasons AWS Batch gives (no 60 s timeout job needed to see the rendering)."""
    rows = [
        {"jobId": "a" * 36, "jobName": "slow", "status": "FAILED",
         "statusReason": "Job attempt duration exceeded timeout"},
        {"jobId": "b" * 36, "jobName": "big", "status": "FAILED",
         "container": {"exitCode": 137, "reason": "OutOfMemoryError: Container killed due to memory usage"}},
    ]  # fmt: skip
    console = Console(width=80, record=True, color_system=None)
    console.print(jobs_table(rows, width=80))
    text = console.export_text()
    assert re.search(r"slow +FAILED TIMEOUT", text) and re.search(r"big +FAILED OOM +137", text), text


def test_names_get_the_width_an_empty_reason_column_does_not_need():
    """A demo's 38-character names beside successes (no reason to show): the empty REASON column took two fifths
    of the spare width and each name wrapped onto three lines at 80 and 120 columns; now two at most."""
    now = time.time() * 1000  # started today: STARTED shows the time only, as in a real listing
    rows = [{"jobId": f"{index}" * 36, "jobName": "demo-20261129-142403-4bea-evaluate", "status": "SUCCEEDED",
             "arrayProperties": {"size": 2}, "startedAt": now - 3_000, "stoppedAt": now - 1_000,
             "container": {"reason": "Essential container in task exited"}} for index in range(3)]  # fmt: skip
    for width in (80, 120):
        console = Console(width=width, record=True, color_system=None)
        console.print(jobs_table(rows, width=width, now_ms=now))
        lines = console.export_text().splitlines()
        assert lines[0].rstrip().endswith("REASON") and len(lines) <= 1 + 2 * len(rows), "\n".join(lines)


def test_logs_follow_on_a_waiting_job_says_why_while_it_waits(genobatch_server, jobs):
    command = [sys.executable, "-m", "genobatch", "--data-dir", str(genobatch_server.data_dir)]
    command += ["--endpoint", genobatch_server.endpoint, "logs", "-f", jobs["waiting"]]
    follower = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**genobatch_server.env(), "COLUMNS": "80"})  # fmt: skip
    try:
        line = follower.stderr.readline()  # said at once, while the job still waits
        assert follower.poll() is None, "logs -f gave up on a waiting job"
    finally:
        follower.kill()
        follower.communicate(timeout=30)
    waiting = f"genobatch: {jobs['waiting']} is PENDING: waiting for its dependencies ({jobs['sleeper']}) to succeed"
    assert line.strip() == waiting

"""The web console over plain HTTP against a real server: sign-in, sessions, CSRF, pages, SSE framing.

A real ``genobatch server`` process on loopback (harness.py); requests and the CLI's own signed
login-link request are the clients. The browser test is tests/e2e/test_console_browser.py.
"""

from __future__ import annotations

import json
import time

import pytest
import requests
from harness import Server, launch, run_cli, shell_definition, wait_for
from markupsafe import escape

from genobatch.cli.client import SigningKey
from genobatch.cli.console_cmd import request_login_url
from genobatch.console.runs import run_progress, stages
from genobatch.run import Selector, progress
from genobatch.store.database import open_database

pytestmark = pytest.mark.slow


def sign_in(server: Server) -> requests.Session:
    """A browser-like session signed in through the login form."""
    return server.console_session()


def csrf_of(page: str) -> str:
    marker = 'name="csrf" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


def sse_events(response: requests.Response, until, timeout: float = 30) -> list[tuple[str, dict]]:
    """Parse SSE messages from a streaming response until ``until(events)`` holds (or time runs out)."""
    events: list[tuple[str, dict]] = []
    name, data = None, []
    deadline = time.monotonic() + timeout
    for line in response.iter_lines(decode_unicode=True):
        if line == "":
            if name is not None:
                events.append((name, json.loads("".join(data))))
                if until(events):
                    return events
            name, data = None, []
        elif line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            data.append(line[len("data: ") :])
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"stream ended or timed out; events: {events}")


def test_everything_needs_a_session(genobatch_server: Server) -> None:
    base = genobatch_server.endpoint
    for path in ("/", "/console/jobs", "/console/runs", "/console/benchmarks", "/console/jobs/x"):
        response = requests.get(base + path, allow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/console/login?next=")
    for path in ("/console/events", "/console/run/timeline.json?run=x", "/console/jobs/x/log/events"):
        response = requests.get(base + path, allow_redirects=False)
        assert response.status_code == 401, path
        assert "sign in" in response.json()["message"]
    # An unsigned request for a login link is refused like any unsigned API call.
    response = requests.post(base + "/genobatch/v1/console/login-tokens")
    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_wrong_login_is_refused_with_a_clear_message(genobatch_server: Server) -> None:
    base = genobatch_server.endpoint
    for key, secret in ((genobatch_server.access_key, "wrong-secret"), ("GBIANOSUCHKEY0000000", "x" * 40)):
        http = requests.Session()
        response = http.post(
            base + "/console/login",
            data={"access_key_id": key, "secret_access_key": secret},
            headers={"Origin": base},
            allow_redirects=False,
        )
        assert response.status_code == 401
        assert "The access key id or the secret access key is wrong." in response.text
        assert "set-cookie" not in response.headers
        assert not http.cookies
        assert http.get(base + "/", allow_redirects=False).status_code == 303
    # A login form posted from another site is refused even with the right key.
    response = requests.post(
        base + "/console/login",
        data={"access_key_id": genobatch_server.access_key, "secret_access_key": genobatch_server.secret_key},
        headers={"Origin": "http://evil.example"},
        allow_redirects=False,
    )
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


def test_login_gives_a_strict_httponly_session(genobatch_server: Server, batch) -> None:
    base = genobatch_server.endpoint
    response = requests.post(
        base + "/console/login",
        data={
            "access_key_id": genobatch_server.access_key,
            "secret_access_key": genobatch_server.secret_key,
            "next": "/console/jobs?queue=default",
        },
        headers={"Origin": base},
        allow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/console/jobs?queue=default"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie and "Max-Age=" in cookie
    http = requests.Session()
    http.cookies.update(response.cookies)
    page = http.get(base + "/", allow_redirects=False)
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert 'data-queue="default"' in page.text
    # An open redirect is not possible through ``next``.
    response = requests.post(
        base + "/console/login",
        data={
            "access_key_id": genobatch_server.access_key,
            "secret_access_key": genobatch_server.secret_key,
            "next": "//evil.example/x",
        },
        headers={"Origin": base},
        allow_redirects=False,
    )
    assert response.headers["location"] == "/"
    # Signing out ends the session on the server, not only in this browser: its open streams end too.
    page = http.get(base + "/")
    stream = http.get(base + "/console/events", stream=True, timeout=30)
    lines = stream.iter_lines(decode_unicode=True)  # one iterator: a second one would start on a closed body
    assert next(line for line in lines if line.startswith("event: ")) == "event: summary"
    assert (
        http.post(
            base + "/console/logout", data={"csrf": csrf_of(page.text)}, headers={"Origin": base}, allow_redirects=False
        ).status_code
        == 303
    )
    stale = requests.get(
        base + "/", cookies={"genobatch_console": response.cookies["genobatch_console"]}, allow_redirects=False
    )
    assert stale.status_code == 200  # the second login's session is still live
    again = requests.get(base + "/", cookies=dict(http.cookies), allow_redirects=False)
    assert again.status_code == 303
    began = time.monotonic()
    for _line in lines:  # until the server ends the stream (a keep-alive would come at 15 s)
        assert time.monotonic() - began < 5, "the stream outlived its session"
    assert time.monotonic() - began < 5
    stream.close()


def test_one_time_login_link_from_the_cli(genobatch_server: Server) -> None:
    key = SigningKey(genobatch_server.access_key, genobatch_server.secret_key, "test")
    url = request_login_url(genobatch_server.endpoint, genobatch_server.region, key)
    assert url.startswith(genobatch_server.endpoint + "/console/open?token=")
    http = requests.Session()
    first = http.get(url, allow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/"
    assert http.get(genobatch_server.endpoint + "/", allow_redirects=False).status_code == 200
    second = requests.get(url, allow_redirects=False)
    assert second.status_code == 401
    assert "used already or has expired" in second.text
    assert "set-cookie" not in second.headers
    # The command a user runs prints such a link (and, without --no-browser, opens it).
    printed = run_cli(genobatch_server, "console", "--no-browser").stdout.strip()
    assert printed.startswith(f"Console: {genobatch_server.endpoint}/console/open?token=")
    assert requests.get(printed.removeprefix("Console: "), allow_redirects=False).status_code == 303
    wrong = SigningKey(genobatch_server.access_key, "not-the-secret", "test")
    with pytest.raises(Exception, match="InvalidSignature|signature"):
        request_login_url(genobatch_server.endpoint, genobatch_server.region, wrong)


def test_terminate_needs_the_csrf_token_and_goes_through_the_api(genobatch_server: Server, batch) -> None:
    base = genobatch_server.endpoint
    definition = shell_definition(batch, "console-sleep", "echo started; sleep 60")
    job_id = batch.submit_job(jobName="to-stop", jobQueue="default", jobDefinition=definition)["jobId"]
    wait_for(batch, job_id, ("RUNNING",), timeout=30)
    http = sign_in(genobatch_server)
    page = http.get(f"{base}/console/jobs/{job_id}")
    assert page.status_code == 200 and "to-stop" in page.text
    action = f"{base}/console/jobs/{job_id}/terminate"
    refused = http.post(action, data={"csrf": "forged"}, headers={"Origin": base}, allow_redirects=False)
    assert refused.status_code == 403
    refused = http.post(action, data={"csrf": csrf_of(page.text)}, allow_redirects=False)  # no Origin/Referer
    assert refused.status_code == 403
    assert batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"] == "RUNNING"
    done = http.post(
        action,
        data={"csrf": csrf_of(page.text), "reason": "test says stop"},
        headers={"Origin": base},
        allow_redirects=False,
    )
    assert done.status_code == 303
    detail = wait_for(batch, job_id, ("FAILED",), timeout=30)
    assert detail["statusReason"].startswith("test says stop (by GBIA")
    assert detail["isTerminated"] is True


def test_sse_pushes_changed_jobs_and_streams_the_log(genobatch_server: Server, batch) -> None:
    base = genobatch_server.endpoint
    http = sign_in(genobatch_server)
    with http.get(base + "/console/events", stream=True, timeout=60) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        definition = shell_definition(batch, "console-echo", "for i in 1 2 3; do echo line-$i; sleep 0.3; done")
        job_id = batch.submit_job(jobName="echoes", jobQueue="default", jobDefinition=definition)["jobId"]
        events = sse_events(
            stream,
            lambda seen: any(
                name == "jobs" and any(j["jobId"] == job_id and j["status"] == "SUCCEEDED" for j in data)
                for name, data in seen
            ),
        )
    assert any(name == "summary" and data["queues"].get("default") for name, data in events)
    summaries = [data for name, data in events if name == "summary"]
    assert summaries and all(set(s) == {"queues", "vcpus"} for s in summaries)
    # The log: every line, in order, then the end of the attempt.
    with http.get(f"{base}/console/jobs/{job_id}/log/events", stream=True, timeout=60) as stream:
        events = sse_events(stream, lambda seen: seen[-1][0] == "end")
    text = "".join(data["data"] for name, data in events if name == "log")
    assert text == "line-1\nline-2\nline-3\n"
    assert events[0] == ("status", {"status": "SUCCEEDED", "attempts": 1})
    # Resuming from an offset (what Last-Event-ID carries) sends only the rest.
    with http.get(
        f"{base}/console/jobs/{job_id}/log/events", headers={"Last-Event-ID": "7"}, stream=True, timeout=60
    ) as stream:
        events = sse_events(stream, lambda seen: seen[-1][0] == "end")
    assert "".join(data["data"] for name, data in events if name == "log") == "line-2\nline-3\n"


def test_run_page_and_timeline(genobatch_server: Server, batch) -> None:
    base = genobatch_server.endpoint
    # A second's work: the array must still be running when "call" is submitted, or "call" never
    # waits for it (a fast array could end first, as it did once on PostgreSQL).
    definition = shell_definition(batch, "console-stage", "sleep 1; echo working")
    first = batch.submit_job(
        jobName="align",
        jobQueue="default",
        jobDefinition=definition,
        tags={"genobatch:run": "r1", "genobatch:sample-prefix": "s"},
        arrayProperties={"size": 2},
    )["jobId"]
    second = batch.submit_job(
        jobName="call",
        jobQueue="default",
        jobDefinition=definition,
        tags={"genobatch:run": "r1"},
        dependsOn=[{"jobId": first}],
    )["jobId"]
    wait_for(batch, second, timeout=60)
    http = sign_in(genobatch_server)
    runs = http.get(base + "/console/runs")
    assert "r1" in runs.text and "genobatch%3Arun%3Dr1" in runs.text
    page = http.get(base + "/console/run", params={"run": "r1"})
    assert page.status_code == 200
    assert 'data-stage="console-stage"' in page.text
    timeline = http.get(base + "/console/run/timeline.json", params={"run": "r1"}).json()
    bars = {bar["n"]: bar for bar in timeline["bars"]}
    assert set(bars) == {"align (0)", "align (1)", "call"}
    # "call" waited for its dependency: that wait ends when the array's last child stopped.
    children = batch.describe_jobs(jobs=[f"{first}:0", f"{first}:1"])["jobs"]
    assert bars["call"]["r"] == max(child["stoppedAt"] for child in children)
    assert bars["align (0)"]["r"] is None
    # An N_TO_N child waits for the same index only: index 0's wait ends when index 0 of the array
    # it follows stopped, well before index 1 (2 s later); no wait runs past the attempt's start.
    staggered = shell_definition(batch, "console-staggered", "sleep $((AWS_BATCH_JOB_ARRAY_INDEX * 2 + 1))")
    tags = {"genobatch:run": "r2"}
    lead = batch.submit_job(
        jobName="lead", jobQueue="default", jobDefinition=staggered, tags=tags, arrayProperties={"size": 2}
    )["jobId"]
    per_index = batch.submit_job(
        jobName="per-index",
        jobQueue="default",
        jobDefinition=definition,
        tags=tags,
        arrayProperties={"size": 2},
        dependsOn=[{"jobId": lead, "type": "N_TO_N"}],
    )["jobId"]
    wait_for(batch, per_index, timeout=60)
    bars = {bar["n"]: bar for bar in http.get(base + "/console/run/timeline.json", params={"run": "r2"}).json()["bars"]}
    leads = batch.describe_jobs(jobs=[f"{lead}:0", f"{lead}:1"])["jobs"]
    assert leads[1]["stoppedAt"] - leads[0]["stoppedAt"] > 1000
    follower = batch.describe_jobs(jobs=[f"{per_index}:0"])["jobs"][0]
    bar = bars["per-index (0)"]
    assert bar["r"] == min(leads[0]["stoppedAt"], follower["startedAt"]) and bar["r"] < leads[1]["stoppedAt"], bar
    assert bar["c"] <= bar["b"] == follower["startedAt"]
    # The jobs list filtered by run or tag: the run's top-level jobs; the array's children below it.
    for params in ({"run": "r1"}, {"tag": "genobatch:run=r1"}, {"run": "r1", "status": "SUCCEEDED", "name": "al"}):
        listed = http.get(base + "/console/jobs", params=params).text
        assert f'data-job-id="{first}"' in listed, params
        assert (f'data-job-id="{second}"' in listed) == ("name" not in params), params
        assert f'data-job-id="{first}:0"' not in listed
    children = http.get(base + "/console/jobs", params={"parent": first}).text
    assert f'data-job-id="{first}:0"' in children and f'data-job-id="{first}:1"' in children
    refused = http.get(base + "/console/jobs", params={"status": "DONE"})
    assert refused.status_code == 400 and "status: &#39;DONE&#39; is not one of SUBMITTED" in refused.text
    bad = http.get(base + "/console/run", params={"run": "r1", "queue": "default"})
    assert bad.status_code == 400 and "exactly one of run, tag or queue" in bad.text
    # The live stream's narrow-column progress agrees with the run summary's (which decodes every row).
    database = open_database(genobatch_server.db_url or f"sqlite:///{genobatch_server.data_dir}/genobatch.db")
    arn_prefix = batch.describe_jobs(jobs=[second])["jobs"][0]["jobArn"].rsplit("/", 1)[0] + "/"
    try:
        with database.connect() as conn:
            selector = Selector.parse(run="r1")
            rows = selector.rows(conn)
            _, live = run_progress(conn, selector, arn_prefix)
    finally:
        database.dispose()
    assert live["progress"] == progress(rows) == {"jobs": {"SUCCEEDED": 3}, "total": 3, "samples": 2, "samplesDone": 2}
    assert sorted(live["stages"], key=str) == sorted(stages(rows), key=str)


def test_benchmarks_page_shows_a_benchmark_while_it_runs(genobatch_server: Server, batch) -> None:
    """Jobs tagged as ``genobatch bench run`` tags them appear per tool x configuration x target."""
    definition = shell_definition(batch, "bench-like", "echo shard")
    tags = {
        "genobatch:bench": "plan-20261129-000000",
        "genobatch:bench-tool": "aligner",
        "genobatch:bench-configuration": "fast",
        "genobatch:bench-target": "m5-slice",
        "genobatch:bench-repeat": "0",
    }
    job_id = batch.submit_job(
        jobName="bench-plan", jobQueue="default", jobDefinition=definition, tags=tags, arrayProperties={"size": 2}
    )["jobId"]
    wait_for(batch, job_id, timeout=60)
    http = sign_in(genobatch_server)
    page = http.get(genobatch_server.endpoint + "/console/benchmarks")
    assert page.status_code == 200
    assert "plan-20261129-000000" in page.text
    row = page.text[page.text.index('<th scope="row">aligner</th>') :].split("</tr>")[0]
    assert '<td>fast</td><td>m5-slice</td><td class="num">1 / 1</td><td class="num">0</td>' in row
    assert "The report table appears once the benchmark has saved its results." in page.text


def test_no_auth_console_is_open_actions_need_the_csrf_token_and_streams_end_on_stop(tmp_path_factory) -> None:
    server = launch(tmp_path_factory, "--no-auth")
    try:
        base = server.endpoint
        page = requests.get(base + "/", allow_redirects=False)
        assert page.status_code == 200 and "authentication off" in page.text
        assert requests.get(base + "/console/login", allow_redirects=False).headers["location"] == "/"
        client = server.client()
        definition = shell_definition(client, "sleepy", "sleep 60")
        job_id = client.submit_job(jobName="sleepy", jobQueue="default", jobDefinition=definition)["jobId"]
        action = f"{base}/console/jobs/{job_id}/terminate"
        assert requests.post(action, data={"csrf": "x"}, headers={"Origin": base}).status_code == 403
        job_page = requests.get(f"{base}/console/jobs/{job_id}").text
        done = requests.post(action, data={"csrf": csrf_of(job_page)}, headers={"Origin": base}, allow_redirects=False)
        assert done.status_code == 303
        assert wait_for(client, job_id, ("FAILED",), timeout=30)["isTerminated"] is True
        # A stop is not held up by a browser's open stream: the stream ends and the server exits.
        with requests.get(base + "/console/events", stream=True, timeout=30) as stream:
            lines = stream.iter_lines(decode_unicode=True)  # kept: dropping it would close the body
            assert next(line for line in lines if line.startswith("event: ")) == "event: summary"
            began = time.monotonic()
            server.stop()
            assert time.monotonic() - began < 10
            assert server.proc.returncode == 0
            assert "Traceback" not in server.log()
    finally:
        server.stop()


def test_queues_page_says_why_jobs_wait(genobatch_server: Server, batch) -> None:
    """A job no compute environment can ever hold waits with the scheduler's MISCONFIGURATION reason."""
    definition = batch.register_job_definition(
        jobDefinitionName="too-big",
        type="container",
        containerProperties={
            "image": "busybox",
            "command": ["true"],
            "resourceRequirements": [{"type": "VCPU", "value": "512"}, {"type": "MEMORY", "value": "64"}],
        },
    )["jobDefinitionArn"]
    job_id = batch.submit_job(jobName="too-big", jobQueue="default", jobDefinition=definition)["jobId"]
    try:
        detail = wait_for(batch, job_id, ("RUNNABLE",), timeout=30)
        deadline = time.monotonic() + 30
        while not (detail.get("statusReason") or "").startswith("MISCONFIGURATION") and time.monotonic() < deadline:
            time.sleep(0.2)
            detail = batch.describe_jobs(jobs=[job_id])["jobs"][0]
        reason = detail["statusReason"]
        assert reason.startswith("MISCONFIGURATION:"), detail
        http = sign_in(genobatch_server)
        page = http.get(genobatch_server.endpoint + "/").text
        waits = page[page.index('data-waits="default"') :].split("</tr>")[0]
        assert f'1 × <span class="error">{escape(reason)}</span>' in waits
        job_page = http.get(f"{genobatch_server.endpoint}/console/jobs/{job_id}").text
        assert escape(reason) in job_page
    finally:
        batch.terminate_job(jobId=job_id, reason="test done")

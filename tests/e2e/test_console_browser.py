"""The web console in a real browser: headless Chromium (Debian's) driven over the DevTools protocol.

One scenario against a real server process: a wrong login is refused; the right one signs in;
a run whose jobs are held by a gate job is opened, the gate is released, and the run page is
watched until every stage has finished - without the page reloading; the timeline answers a
hover; a job's log streams live, and the job is terminated from its page (the API then reports it
terminated). Pages are checked at 1024 px and phone width, with no console errors, exceptions or
failed loads at any point. Screenshots go to the test's directory, and to docs/screenshots/ when
``GENOBATCH_UPDATE_SCREENSHOTS=1`` (that is how the README's set was made).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import pytest
from browser import needs_chromium
from devtools import Browser
from harness import Server, shell_definition, wait_for

pytestmark = [pytest.mark.slow, needs_chromium]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SAMPLES = 6
RESULTS = {"snv.precision": 0.998, "snv.recall": 0.991, "coverage": 31.2}


@pytest.fixture
def browser(tmp_path):
    chromium = Browser(tmp_path / "profile", 1280, 900)
    yield chromium
    chromium.close()


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def shoot(browser: Browser, tmp_path: Path, name: str) -> Path:
    """A full-page screenshot, kept with the test and copied to docs/screenshots/ when asked."""
    path = browser.screenshot(tmp_path / f"{name}.png")
    width, height = png_size(path)
    assert width >= 300 and height >= 300, (name, width, height)
    if os.environ.get("GENOBATCH_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SCREENSHOTS / path.name)
    return path


def fill_login(browser: Browser, key: str, secret: str) -> None:
    browser.evaluate(
        f"document.getElementById('access_key_id').value = {json.dumps(key)};"
        f"document.getElementById('secret_access_key').value = {json.dumps(secret)};"
        "document.querySelector('form[action=\"/console/login\"]').requestSubmit(); true"
    )


def submit_gated_run(batch, gate_file: Path) -> dict[str, str]:
    """A run of three stages held by a gate job until ``gate_file`` exists: an array of samples that
    publish results (sample4 fails), and a merge that depends on the array (so it fails too, as
    AWS Batch fails a job whose dependency failed)."""
    gate = shell_definition(batch, "gate", f"while [ ! -e {gate_file} ]; do sleep 0.1; done")
    results = "genobatch:results " + json.dumps({"metrics": RESULTS, "units": {"snv.precision": "fraction"}})
    align = shell_definition(
        batch,
        "align",
        'sleep 0.5; if [ "$AWS_BATCH_JOB_ARRAY_INDEX" = 4 ]; then echo "no reads left" >&2; exit 3; fi; '
        f"echo '{results}'",
    )
    merge = shell_definition(batch, "merge", "echo merged")
    tags = {"genobatch:run": "console-e2e"}
    gate_id = batch.submit_job(jobName="gate", jobQueue="default", jobDefinition=gate, tags=tags)["jobId"]
    array_id = batch.submit_job(
        jobName="align",
        jobQueue="default",
        jobDefinition=align,
        arrayProperties={"size": SAMPLES},
        dependsOn=[{"jobId": gate_id}],
        tags={**tags, "genobatch:sample-prefix": "sample"},
    )["jobId"]
    merge_id = batch.submit_job(
        jobName="merge",
        jobQueue="default",
        jobDefinition=merge,
        dependsOn=[{"jobId": array_id}],
        tags=tags,
    )["jobId"]
    return {"gate": gate_id, "array": array_id, "merge": merge_id}


def test_console_in_a_browser(genobatch_server: Server, batch, browser: Browser, tmp_path: Path) -> None:
    base = genobatch_server.endpoint

    # A wrong login: refused with a message, and still nothing readable.
    browser.goto(base + "/")
    assert browser.evaluate("location.pathname") == "/console/login"
    shoot(browser, tmp_path, "console-login")
    fill_login(browser, genobatch_server.access_key, "not-the-secret")
    message = browser.wait_for("document.getElementById('login-error')?.textContent")
    assert message == "The access key id or the secret access key is wrong."
    browser.goto(base + "/console/jobs")
    assert browser.evaluate("location.pathname") == "/console/login"

    # The right key signs in and lands where it was going.
    fill_login(browser, genobatch_server.access_key, genobatch_server.secret_key)
    browser.wait_for("location.pathname === '/console/jobs' && document.readyState === 'complete'")

    # Keyboard: the first Tab reaches the skip link.
    browser.press("Tab", key_code=9)
    assert browser.evaluate("document.activeElement.className") == "skip"

    gate_file = tmp_path / "go"
    ids = submit_gated_run(batch, gate_file)
    # The queues while the gate holds the run: jobs waiting for dependencies, said so.
    browser.viewport(1024, 768)
    browser.goto(base + "/")
    browser.wait_for(
        "document.querySelector('tr[data-waits=\"default\"]')?.textContent.includes('waiting for dependencies')"
    )
    assert browser.evaluate("document.documentElement.scrollWidth") <= 1024
    shoot(browser, tmp_path, "console-queues")
    browser.viewport(1280, 900)
    browser.goto(base + "/console/run?run=console-e2e")
    browser.evaluate("window.notReloaded = true")
    browser.wait_for("document.getElementById('live-state').dataset.state === 'live'")
    assert (
        browser.evaluate('document.querySelector(\'tr[data-stage="align"] td[data-count="SUCCEEDED"]\').textContent')
        == "0"
    )
    gate_file.touch()
    # Watched live: every stage reaches its final counts while the page stays the same document.
    browser.wait_for(
        "document.querySelector('tr[data-stage=\"align\"] td[data-count=\"SUCCEEDED\"]')?.textContent === '5' && "
        "document.querySelector('tr[data-stage=\"align\"] td[data-count=\"FAILED\"]')?.textContent === '1' && "
        "document.querySelector('tr[data-stage=\"merge\"] td[data-count=\"FAILED\"]')?.textContent === '1'",
        timeout=90,
    )
    assert browser.evaluate("window.notReloaded") is True
    # The sections refreshed from the stream: the errors panel names the failed sample, the
    # results table shows what the samples published.
    browser.wait_for("document.querySelector('ul.errors')?.textContent.includes('sample4')", timeout=30)
    errors = browser.evaluate("document.querySelector('ul.errors').textContent")
    assert "no reads left" in errors and ids["merge"] in browser.evaluate(
        "document.querySelector('ul.errors').innerHTML"
    )
    browser.wait_for("document.querySelector('table.science')?.textContent.includes('99.80%')", timeout=30)
    assert browser.evaluate("window.notReloaded") is True

    # The timeline: one row per attempt; hovering a row tells its job, attempt and waits.
    browser.wait_for("document.querySelectorAll('#timeline path').length >= 3", timeout=30)
    box = browser.evaluate(
        "(() => { const r = document.querySelector('#timeline svg').getBoundingClientRect();"
        " window.scrollTo(0, r.top + window.scrollY - 100);"
        " const s = document.querySelector('#timeline svg').getBoundingClientRect();"
        " return [s.left, s.top, s.width]; })()"
    )
    for kind in ("mouseMoved",):
        browser.send("Input.dispatchMouseEvent", type=kind, x=box[0] + box[2] / 2, y=box[1] + 22 + 16 * 2 + 5)
    tip = browser.wait_for(
        "!document.getElementById('timeline-tip').hidden && document.getElementById('timeline-tip').textContent"
    )
    # Row 2 is a sample of the array, which waited for the gate job: a dependency wait above zero.
    assert "align (" in tip and "attempt 1" in tip and "attributed cost" in tip
    assert "waiting for dependencies" in tip and "waiting for dependencies 0 ms" not in tip
    # The keyboard reaches every row too: focus the timeline, then arrow down to the next attempt.
    browser.evaluate("document.getElementById('timeline').focus(); true")
    before = browser.evaluate("document.getElementById('timeline-tip').textContent")
    browser.press("ArrowDown", key_code=40)
    after = browser.wait_for(
        f"document.getElementById('timeline-tip').textContent !== {json.dumps(before)} && "
        "document.getElementById('timeline-tip').textContent"
    )
    assert "attempt 1" in after
    shoot(browser, tmp_path, "console-run")

    # A job's log, streamed while it runs; then terminated from its page.
    ticker = shell_definition(batch, "ticker", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.3; done")
    job_id = batch.submit_job(jobName="ticker", jobQueue="default", jobDefinition=ticker)["jobId"]
    wait_for(batch, job_id, ("RUNNING",), timeout=30)
    browser.goto(f"{base}/console/jobs/{job_id}")
    browser.wait_for("document.getElementById('log').textContent.includes('tick 3')", timeout=30)
    browser.wait_for("document.getElementById('log').textContent.includes('tick 6')", timeout=30)
    shoot(browser, tmp_path, "console-job")
    browser.evaluate("document.getElementById('reason').value = 'stopped from the browser test'; true")
    browser.evaluate("document.getElementById('terminate').click(); true")
    browser.wait_for("location.search === '?done=terminate'")
    browser.wait_for("document.querySelector('#job-status [data-status]').textContent === 'FAILED'", timeout=30)
    detail = batch.describe_jobs(jobs=[job_id])["jobs"][0]
    assert detail["status"] == "FAILED" and detail["isTerminated"] is True
    assert detail["statusReason"].startswith("stopped from the browser test")
    browser.wait_for("document.getElementById('log-state').textContent.startsWith('Log complete')", timeout=30)
    # The attempts table shows the stop time (refreshed from the stream when it ended after the page loaded).
    browser.wait_for("document.querySelector('table.attempts tbody tr td:nth-child(4)').textContent !== '–'")

    # The queues and jobs pages at 1024 px: nothing wider than the window.
    browser.viewport(1024, 768)
    for path in ("/", "/console/jobs"):
        browser.goto(base + path)
        browser.wait_for("document.getElementById('live-state').dataset.state === 'live'")
        assert browser.evaluate("document.documentElement.scrollWidth") <= 1024, path
    shoot(browser, tmp_path, "console-jobs")
    queue_running = browser.evaluate("document.body.innerText")
    assert "gate" in queue_running and "ticker" in queue_running

    # On a phone: the run page reflows to the screen (wide tables scroll inside their own box).
    browser.viewport(390, 844, mobile=True)
    browser.goto(base + "/console/run?run=console-e2e")
    browser.wait_for("document.querySelectorAll('#timeline path').length >= 3", timeout=30)
    assert browser.evaluate("document.documentElement.scrollWidth") <= 390
    shoot(browser, tmp_path, "console-run-phone")

    # The only failed load is the refused sign-in itself (answered 401, which Chromium logs).
    assert browser.problems() == [
        f"log: Failed to load resource: the server responded with a status of 401 (Unauthorized) ({base}/console/login)"
    ]

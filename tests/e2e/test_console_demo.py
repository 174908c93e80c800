"""The console on a real pipeline: ``genobatch demo`` runs, then a browser signed in through the
link ``genobatch console`` prints opens the demo's run page and finds what the pipeline produced.

The demo starts its own server (its own SQLite store), so this test uses no shared fixture.
Screenshot: ``console-demo-run.png`` (to docs/screenshots/ with ``GENOBATCH_UPDATE_SCREENSHOTS=1``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest
from browser import needs_chromium
from devtools import Browser
from harness import free_port
from test_console_browser import shoot

# no_store: the demo's server keeps its own SQLite file, so the PostgreSQL pass would only repeat it.
pytestmark = [pytest.mark.slow, pytest.mark.no_store, needs_chromium]


def test_demo_run_in_the_console(tmp_path) -> None:
    home = tmp_path / "home"
    endpoint = f"http://127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "genobatch", "--data-dir", str(home), "--endpoint", endpoint]
    env = {**os.environ, "COLUMNS": "120"}
    demo = subprocess.run([*command, "demo", "--samples", "2"], capture_output=True, text=True, env=env, timeout=600)
    server_pid = json.loads((home / "server.json").read_text())["pid"]
    browser = Browser(tmp_path / "profile", 1280, 900)
    try:
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        run_id = re.search(r"run (demo-[\w-]+):", demo.stdout).group(1)
        link = subprocess.run(
            [*command, "console", "--no-browser"], capture_output=True, text=True, env=env, timeout=60
        )
        assert link.returncode == 0, link.stderr
        url = link.stdout.strip().removeprefix("Console: ")
        browser.goto(url)  # the one-time link signs the browser in and lands on the queues page
        assert browser.evaluate("location.pathname") == "/"
        browser.goto(f"{endpoint}/console/runs")
        assert run_id in browser.evaluate("document.querySelector('table.runs').textContent")
        browser.evaluate(f"document.querySelector('a[href*=\"{run_id}\"]').click(); true")
        browser.wait_for("location.pathname === '/console/run' && document.readyState === 'complete'")
        # Every stage of the pipeline finished; the science table shows each sample's metrics.
        done = browser.evaluate(
            "Object.fromEntries([...document.querySelectorAll('tr[data-stage]')]"
            ".map(r => [r.dataset.stage, r.querySelector('[data-done]').textContent]))"
        )
        stages = ("reference", "simulate", "align", "sort", "call", "evaluate", "stats")
        assert set(done) == {f"genobatch-demo-{stage}" for stage in stages}, done
        assert all(value.split("/")[0] == value.split("/")[1] for value in done.values()), done
        science = browser.evaluate("document.querySelector('table.science').innerText")
        assert "sample0" in science and "sample1" in science
        assert re.search(r"precision", science, re.IGNORECASE), science
        assert "FAILED" not in science
        browser.wait_for("document.querySelectorAll('#timeline path').length >= 3", timeout=30)
        shoot(browser, tmp_path, "console-demo-run")
        # The link was for one use: a second browser profile gets the refusal, not the console.
        second = Browser(tmp_path / "profile2", 800, 600)
        try:
            second.goto(url)
            assert "used already or has expired" in second.evaluate(
                "document.getElementById('login-error').textContent"
            )
        finally:
            second.close()
        assert browser.problems() == []
    finally:
        browser.close()
        os.kill(server_pid, signal.SIGTERM)

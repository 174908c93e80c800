"""The README's first command: ``genobatch demo`` on the embedded default, checked from its outputs.

The demo starts its own server (the embedded default) on a free loopback port; the test then checks
the pipeline's outputs, the precision/recall bound, and that the report's totals equal the sums
recomputed from the API.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pysam
import pytest
from browser import chromium, needs_chromium
from harness import as_from_a_terminal, free_port
from openpyxl import load_workbook

from genobatch.cli.client import SigningKey
from genobatch.cli.native import signed_get
from genobatch.report.units import money

# no_store: the demo's own server keeps its own SQLite file, so the PostgreSQL pass would only repeat it.
pytestmark = [pytest.mark.slow, pytest.mark.no_store]
SAMPLES = 2


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("demo-home")
    endpoint = f"http://127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "genobatch", "--data-dir", str(data_dir), "--endpoint", endpoint]
    env = {**os.environ, "COLUMNS": "80"}  # a normal terminal: the progress must fit it
    result = subprocess.run(
        [*command, "demo", "--samples", str(SAMPLES)], capture_output=True, text=True, env=env, timeout=600
    )
    server = json.loads((data_dir / "server.json").read_text())
    try:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        run_id = re.search(r"run (demo-[\w-]+):", result.stdout).group(1)
        run_dir = data_dir / "runs" / run_id
        keys = json.loads((data_dir / "credentials.json").read_text())["keys"][0]
        key = SigningKey(keys["access_key_id"], keys["secret_access_key"], "test")
        summary = signed_get(endpoint, "/genobatch/v1/runs", {"run": run_id, "trace": "1"}, "us-east-1", key)
        yield result.stdout, run_dir, summary
    finally:
        os.kill(server["pid"], signal.SIGTERM)


def test_demo_says_the_server_keeps_running_and_how_to_stop_it(demo_run):
    stdout, run_dir, _ = demo_run
    data_dir = run_dir.parent.parent
    pid = json.loads((data_dir / "server.json").read_text())["pid"]
    assert f"started the embedded genobatch server (pid {pid}" in stdout
    last = stdout.strip().splitlines()[-1]
    assert last.startswith(f"the genobatch server (pid {pid}, http://127.0.0.1:") and "keeps running" in last
    assert last.endswith(f"stop it with: genobatch --data-dir {data_dir} server stop")


def test_demo_outputs_recover_the_truth(demo_run):
    stdout, run_dir, summary = demo_run
    assert summary["progress"]["jobs"] == {"SUCCEEDED": 1 + 6 * SAMPLES}  # reference + 6 stages per sample
    assert summary["progress"]["samplesDone"] == SAMPLES
    for index in range(SAMPLES):
        sample = run_dir / f"sample{index}"
        evaluation = json.loads((sample / "evaluation.json").read_text())
        assert evaluation["precision"] >= 0.95 and evaluation["recall"] >= 0.95, evaluation
        with pysam.AlignmentFile(str(sample / "sample.bam")) as bam:
            assert bam.header["HD"]["SO"] == "coordinate" and bam.check_index()
        with pysam.VariantFile(str(sample / "calls.vcf.gz")) as vcf:
            assert sum(1 for _ in vcf) > 0
        assert (sample / "stats.txt").stat().st_size > 0
    # The closing table: per sample, status then precision as a percentage.
    shown = re.findall(r"(sample\d+) +│ SUCCEEDED +│ +(\d+\.\d\d)%", stdout)
    assert [name for name, _ in shown] == [f"sample{i}" for i in range(SAMPLES)], stdout[-2000:]
    assert all(float(precision) >= 95 for _, precision in shown), shown


def test_report_totals_equal_the_api(demo_run):
    _, run_dir, summary = demo_run
    report = run_dir / "report"
    cost = summary["cost"]
    trace_total = sum(record["attributed_cost"] for record in summary["trace"])
    assert math.isclose(cost["attributedUsd"], trace_total, rel_tol=1e-9)
    with open(report / "trace.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert len(rows) == len(summary["trace"])
    assert math.isclose(sum(float(row["attributed_cost"]) for row in rows), cost["attributedUsd"], rel_tol=1e-6)
    html = (report / "report.html").read_text()

    def shown(element_id: str) -> float:
        return float(re.search(rf'id="{element_id}"[^>]*data-value="([^"]+)"', html).group(1))

    assert math.isclose(shown("total-attributed"), cost["attributedUsd"], rel_tol=1e-6)
    assert math.isclose(shown("total-billed"), cost["billedUsd"], rel_tol=1e-6)
    assert shown("jobs-total") == summary["progress"]["total"]
    assert (report / "report.xlsx").stat().st_size > 0


SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@needs_chromium
def test_report_screenshot_at_1400_px(demo_run, tmp_path):
    """The run report as a reader sees it (results, errors, costs), taken for the README with
    GENOBATCH_UPDATE_SCREENSHOTS=1; the page must load with no console error or failed load."""
    from devtools import Browser

    _, run_dir, _ = demo_run
    browser = Browser(tmp_path / "profile", 1400, 1000)
    try:
        browser.goto((run_dir / "report" / "report.html").as_uri())
        browser.wait_for("document.documentElement.getAttribute('data-script-ok') === '1'")
        # At 1400 px the results table (a dozen metrics) fits without scrolling, and nothing widens the page.
        fits = browser.evaluate(
            "(function () { var holder = document.getElementById('results-table').parentElement;"
            " return holder.scrollWidth <= holder.clientWidth"
            " && document.documentElement.scrollWidth <= window.innerWidth; })()"
        )
        assert fits is True
        shot = browser.screenshot(tmp_path / "report-run.png")
        assert browser.problems() == []
    finally:
        browser.close()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    if os.environ.get("GENOBATCH_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOTS / shot.name)


@needs_chromium
def test_report_renders_in_chromium(demo_run, tmp_path):
    _, run_dir, summary = demo_run
    dom, console = chromium(run_dir / "report" / "report.html", tmp_path / "profile")
    assert console == []
    assert 'data-script-ok="1"' in dom
    assert money(summary["cost"]["attributedUsd"]) in dom
    results_rows = re.findall(r'<tr data-sample="(sample\d+)" data-status="(\w+)"', dom)
    assert results_rows == [(f"sample{i}", "SUCCEEDED") for i in range(SAMPLES)] and "Truth set:" in dom


#: One progress row: its label, the bar (blank while at 0 when the output is not a terminal), done/total and elapsed.
PROGRESS_ROW = re.compile(r"^ ?(\w+) +[━╸╺ ]*(\d+/(\d+|\?)) +\d:\d\d:\d\d.*$", re.MULTILINE)


def progress_rows(output: str) -> dict[str, str]:
    return {match.group(1): match.group(0) for match in PROGRESS_ROW.finditer(output)}


def test_progress_fits_80_columns_with_a_bar_per_stage(demo_run):
    stdout, _, _ = demo_run
    lines = stdout.splitlines()
    too_wide = [line for line in lines if len(line) > 80 and not line.startswith("the genobatch server")]
    assert too_wide == [], too_wide
    bars = progress_rows(stdout)
    assert set(bars) == {"jobs", "samples", "reference", "simulate", "align", "sort", "call", "stats", "evaluate"}
    assert f"{1 + 6 * SAMPLES}/{1 + 6 * SAMPLES}" in bars["jobs"] and re.search(r"\d:\d\d:\d\d", bars["jobs"])
    assert f"{SAMPLES}/{SAMPLES}" in bars["samples"] and f"{SAMPLES}/{SAMPLES}" in bars["evaluate"]
    assert re.search(r"cost so far \$0\.0*[1-9]\d* attributed", stdout), "cost so far reads as zero"


def test_cost_tables_read_whole_at_80_and_120_columns(demo_run):
    """Nothing cut ("purcha…", "$0.000…" before): every figure of the summary reads whole, and per sample the
    attributed cost and the share of the bill, in natural order, the billed shares adding up to the bill."""
    stdout, run_dir, summary = demo_run
    data_dir = run_dir.parent.parent
    cost = summary["cost"]
    environment = cost["computeEnvironments"][0]
    figures = [environment["instanceType"], environment["purchase"], f"({environment['priceAsOf']})"]
    figures += [money(environment[key]) for key in ("pricePerHour", "attributedUsd", "billedUsd")]
    at_80 = stdout[stdout.index("Compute environments") : stdout.index("Results per sample")]
    command = [sys.executable, "-m", "genobatch", "--data-dir", str(data_dir), "cost", "--run", run_dir.name]
    at_120 = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"}, check=True)
    for columns, tables in ((80, at_80), (120, at_120.stdout)):
        assert "…" not in tables, tables
        assert max(len(line) for line in tables.splitlines()) <= columns, tables
        for figure in figures:
            assert figure in tables, (columns, figure, tables)
        for header in ("environment", "instance,", "purchase", "$/h (as of)", "attributed", "billed", "instances"):
            assert header in tables, (columns, header)
        rows = re.findall(r"│ (sample\d+) +│ +(\S+) │ +(\S+) │", tables)
        assert [name for name, _, _ in rows] == [f"sample{i}" for i in range(SAMPLES)], tables
        for name, attributed, _ in rows:
            assert attributed == money(cost["bySample"][name])
        billed_shares = sum(float(share.lstrip("$")) for _, _, share in rows)
        assert math.isclose(billed_shares, cost["billedUsd"], rel_tol=0.01), (billed_shares, cost["billedUsd"])


def test_results_per_sample_are_published_and_reported(demo_run):
    stdout, run_dir, _ = demo_run
    assert "Results per sample" in stdout
    book = load_workbook(run_dir / "report" / "report.xlsx")
    sheet = book["Results"]
    headers = [cell.value for cell in sheet[1]]
    for metric in ("precision", "recall", "SNV F1", "indel F1", "genotype concordance", "coverage", "error rate"):
        assert metric in headers, headers
    assert "mapped fraction" in headers
    rows = {row[0].value: row for row in sheet.iter_rows(min_row=2, max_row=1 + SAMPLES)}
    assert sorted(rows) == [f"sample{i}" for i in range(SAMPLES)]
    for index in range(SAMPLES):
        row = rows[f"sample{index}"]
        evaluation = json.loads((run_dir / f"sample{index}" / "evaluation.json").read_text())
        assert row[1].value == "SUCCEEDED"
        precision = row[headers.index("precision")]
        assert precision.value == evaluation["precision"] and precision.number_format == "0.00%"
        assert row[headers.index("SNV F1")].value == evaluation["by_kind"]["snv"]["f1"]
        assert row[headers.index("coverage")].value > 20
    assert any(str(r[0]).startswith("Method: Truth set") for r in sheet.iter_rows(values_only=True))


def test_only_declared_outputs_are_priced_as_downloaded(demo_run):
    _, run_dir, _ = demo_run
    html = (run_dir / "report" / "report.html").read_text()
    assert "the declared outputs (sample.bam, sample.bam.bai, calls.vcf.gz" in html
    assert "intermediate files are not" in html
    assert "split in proportion to each sample" in html  # per-sample compute is built on the billed cost


def test_ctrl_c_terminates_the_runs_jobs(tmp_path):
    data_dir = tmp_path / "home"
    endpoint = f"http://127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "genobatch", "--data-dir", str(data_dir), "--endpoint", endpoint, "demo"]
    demo = subprocess.Popen(
        [*command, "--samples", "3", "--coverage", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
        preexec_fn=as_from_a_terminal,
    )
    try:
        line = ""
        while "run demo-" not in line:
            line = demo.stdout.readline()
            assert line, "the demo ended before submitting its run"
        run_id = re.search(r"run (demo-[\w-]+):", line).group(1)
        keys = json.loads((data_dir / "credentials.json").read_text())["keys"][0]
        key = SigningKey(keys["access_key_id"], keys["secret_access_key"], "test")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # interrupt while work is in flight
            jobs = signed_get(endpoint, "/genobatch/v1/runs", {"run": run_id}, "us-east-1", key)["progress"]["jobs"]
            if jobs.get("RUNNING"):
                break
            time.sleep(0.1)
        demo.send_signal(signal.SIGINT)
        output = demo.communicate(timeout=60)[0]
        assert demo.returncode == 130, output
        assert "terminated the run's" in output
        # The progress as it stood at Ctrl-C, within 120 columns: a bar with counts and elapsed time per row.
        bars = progress_rows(output)
        assert bars and all(len(line) <= 120 for line in bars.values()), output
        assert re.search(r"\d+/(\d+|\?) +\d:\d\d:\d\d", bars.get("jobs", "")), repr(output)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            jobs = signed_get(endpoint, "/genobatch/v1/runs", {"run": run_id}, "us-east-1", key)["progress"]["jobs"]
            if set(jobs) <= {"SUCCEEDED", "FAILED"}:
                break
            time.sleep(0.2)
        assert set(jobs) <= {"SUCCEEDED", "FAILED"} and jobs.get("FAILED"), jobs
    finally:
        demo.kill()
        server = json.loads((data_dir / "server.json").read_text())
        os.kill(server["pid"], signal.SIGTERM)

"""Results a job publishes (a ``genobatch:results`` line in its log), read back through the native API."""

from __future__ import annotations

import uuid

import pytest
from harness import run_cli, shell_definition, wait_for
from openpyxl import load_workbook

from genobatch.report.results import RunResults, natural_key, parse_line

SIZE = 12
FAILING = 7


@pytest.fixture(scope="module")
def published_run(genobatch_server, batch):
    """An array of SIZE samples; each publishes metrics, one fails after printing an error, one publishes garbage."""
    script = (
        'i=$AWS_BATCH_JOB_ARRAY_INDEX; echo "working on $i"; '
        f'if [ "$i" = {FAILING} ]; then echo "boom: reference missing" >&2; exit 3; fi; '
        'if [ "$i" = 1 ]; then echo \'genobatch:results {"metrics": 5}\'; fi; '
        'echo "genobatch:results {\\"metrics\\": {\\"recall\\": 0.$i, \\"coverage\\": $i}, '
        '\\"units\\": {\\"recall\\": \\"fraction\\", \\"coverage\\": \\"x\\"}, \\"method\\": \\"simulated truth\\"}"; '
        'echo "  quoted genobatch:results {\\"metrics\\": {\\"nope\\": 1}} is not a result"'
    )
    definition = shell_definition(batch, "publish-" + uuid.uuid4().hex[:6], script)
    run = "results-" + uuid.uuid4().hex[:6]
    parent = batch.submit_job(
        jobName="per-sample",
        jobQueue="default",
        jobDefinition=definition,
        arrayProperties={"size": SIZE},
        tags={"genobatch:run": run, "genobatch:sample-prefix": "sample"},
    )["jobId"]
    wait_for(batch, parent, timeout=120)
    return parent, RunResults.from_document(genobatch_server.native("/runs/results", run=run)), run


def test_samples_come_back_in_natural_order_with_their_metrics(published_run):
    _, results, _ = published_run
    names = [s.sample for s in results.samples]
    assert names == [f"sample{i}" for i in range(SIZE)]  # sample2 before sample10
    assert results.metrics == ["recall", "coverage"]
    assert results.units == {"recall": "fraction", "coverage": "x"}
    assert results.methods == ["simulated truth"]
    sample3 = results.samples[3]
    assert sample3.status == "SUCCEEDED" and sample3.metrics == {"recall": 0.3, "coverage": 3}
    assert "nope" not in results.metrics  # a quoted marker mid-line is not a result


def test_a_failed_sample_is_failed_not_missing(published_run):
    parent, results, _ = published_run
    failed = results.samples[FAILING]
    assert failed.status == "FAILED" and failed.metrics == {}
    assert failed.failures and "exit code 3" in failed.failures[0].lower(), failed.failures
    (error,) = results.errors
    assert error.job_id == f"{parent}:{FAILING}" and error.sample == f"sample{FAILING}"
    assert error.exit_code == 3
    assert "boom: reference missing" in error.log_tail


def test_a_malformed_results_line_is_reported_not_dropped_silently(published_run):
    _, results, _ = published_run
    (problem,) = results.problems
    assert "metrics must be a non-empty object" in problem and "(1)" in problem
    assert results.samples[1].metrics == {"recall": 0.1, "coverage": 1}  # its good line still counts


def test_the_run_report_shows_results_failed_sample_and_errors(genobatch_server, published_run, tmp_path):
    parent, _, run = published_run
    run_cli(genobatch_server, "report", run, "--out", str(tmp_path / "report"))
    book = load_workbook(tmp_path / "report" / "report.xlsx")
    rows = list(book["Results"].iter_rows(min_row=2, max_row=1 + SIZE, values_only=True))
    assert [row[0] for row in rows] == [f"sample{i}" for i in range(SIZE)]
    assert rows[FAILING][1] == "FAILED" and "exit code 3" in rows[FAILING][-1]
    assert rows[3][1] == "SUCCEEDED" and rows[3][4:6] == (0.3, 3)
    (error,) = list(book["Errors"].iter_rows(min_row=2, values_only=True))
    assert error[0] == f"{parent}:{FAILING}" and "boom: reference missing" in error[6]
    html = (tmp_path / "report" / "report.html").read_text()
    assert f'<tr data-sample="sample{FAILING}" data-status="FAILED">' in html
    assert f'data-job-id="{parent}:{FAILING}"' in html and "boom: reference missing" in html
    assert "simulated truth" in html and "metrics must be a non-empty object" in html


def test_results_need_a_selector(genobatch_server):
    with pytest.raises(Exception, match="exactly one of run, tag or queue"):
        genobatch_server.native("/runs/results")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("[1]", "must be a JSON object"),
        ('{"metrics": {"a": "x"}}', "metrics.a must be a number"),
        ('{"metrics": {"a": true}}', "metrics.a must be a number"),
        ('{"metrics": {"a": 1}, "extra": 1}', "unknown field(s) extra"),
        ('{"metrics": {"a": 1}, "units": {"a": 5}}', "units must be an object"),
        ("{nope", "not JSON"),
    ],
)
def test_each_malformed_document_names_its_problem(payload, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_line(payload)


def test_natural_key_orders_numbers_by_value():
    assert sorted(["sample10", "sample2", "Sample1", "(run)"], key=natural_key) == [
        "(run)",
        "Sample1",
        "sample2",
        "sample10",
    ]

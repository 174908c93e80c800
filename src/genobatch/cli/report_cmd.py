"""``genobatch report RUN``: the run report (HTML, trace TSV, xlsx, charts) for any group of jobs.

The numbers come from the server's run summary (``GET /genobatch/v1/runs``), so the report's totals
are the API's, and what the jobs published from ``GET /genobatch/v1/runs/results``. Per-sample costs
are built on what the user pays: the billed cost (instances, idle time included) split in proportion
to each sample's attributed cost, run-level jobs shared evenly. Storage and transfer are estimated
from the sample's files, with the assumptions stated in the report: every file under
``--outputs/<sample>/`` kept ``--retention-days`` in S3 Standard, and only the declared outputs
(``--declared-output GLOB``; by default every file) downloaded once over the internet
(``--no-egress`` to leave that out) - intermediate files are not downloaded.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from genobatch.cli.client import Client
from genobatch.cli.cost_cmd import fetch_summary, selector_params
from genobatch.cli.errors import CliError
from genobatch.cost.billing import storage_cost, transfer_cost
from genobatch.report import units
from genobatch.report.model import (
    ComputeEnvironmentCost,
    RunData,
    RunInfo,
    SampleCost,
    TraceRecord,
)
from genobatch.report.results import RunResults, natural_key

if TYPE_CHECKING:
    from genobatch.report.rightsizing import Advice
    from genobatch.report.writer import ReportFiles

pass_client = click.make_pass_decorator(Client)
GB = 1 << 30
RUN_LEVEL = "(run)"  # jobs that serve every sample (e.g. building the reference)


def output_sizes(outputs: Path | None, samples: list[str], patterns: tuple[str, ...] = ()) -> dict[str, int]:
    """Bytes of the files under ``outputs/<sample>/`` per sample (0 where there is none); with ``patterns``,
    only the files whose path relative to the sample's folder matches one of these globs."""
    sizes = {}
    for sample in samples:
        directory = outputs / sample if outputs else None
        files = directory.rglob("*") if directory and directory.is_dir() else ()
        sizes[sample] = sum(
            path.stat().st_size
            for path in files
            if path.is_file() and (not patterns or any(path.relative_to(directory).match(p) for p in patterns))
        )
    return sizes


def cost_basis(summary: dict, declared: tuple[str, ...], retention_days: float, egress: bool) -> str:
    """The paragraph above the per-sample table: what each column is built on."""
    cost = summary["cost"]
    compute = (
        "Compute per sample is the run's billed cost (what the instances cost, idle time included: "
        f"{units.money(cost['billedUsd'])}) split in proportion to each sample's attributed cost (its jobs' "
        f"share of the instances, {units.money(cost['attributedUsd'])} in all); run-level jobs are shared evenly."
        if cost["billedUsd"] and cost["attributedUsd"]
        else "Compute per sample is the sample's attributed cost plus an even share of run-level jobs."
    )
    storage = f" Storage: every file in the sample's output folder, kept {retention_days:g} days in S3 Standard."
    if not egress:
        transfer = " Transfer: not priced (--no-egress)."
    elif declared:
        transfer = (
            f" Transfer: the declared outputs ({', '.join(declared)}) downloaded once over the internet; "
            "intermediate files are not."
        )
    else:
        transfer = " Transfer: every file in the sample's output folder downloaded once over the internet."
    return compute + storage + transfer


def sample_rows(
    summary: dict,
    sizes: dict[str, int],
    region: str,
    client: Client,
    retention_days: float,
    egress: bool,
    egress_sizes: dict[str, int] | None = None,
) -> list[SampleCost]:
    """Compute (billed cost in proportion to attributed, run-level jobs shared evenly), storage (``sizes``) and
    transfer (``egress_sizes``, by default ``sizes``), one row per sample in natural order."""
    from genobatch.run import price_catalog

    catalog = price_catalog(client.data_dir)
    storage_rate = catalog.storage_rate("s3_standard", region)
    egress_rate = catalog.transfer_rate("internet_egress", region)
    by_sample = dict(summary["cost"]["bySample"])
    shared = by_sample.pop("(none)", 0.0) + by_sample.pop(RUN_LEVEL, 0.0)
    samples = sorted(by_sample, key=natural_key)
    attributed, billed = summary["cost"]["attributedUsd"], summary["cost"]["billedUsd"]
    # What the user pays is the billed cost; each sample carries it in proportion to what its jobs used.
    scale = billed / attributed if attributed and billed else 1.0
    downloaded = sizes if egress_sizes is None else egress_sizes
    rows = []
    for sample in samples:
        compute = (by_sample[sample] + shared / len(samples)) * scale
        storage = storage_cost(sizes.get(sample, 0) / GB, retention_days, storage_rate)
        transfer = transfer_cost(downloaded.get(sample, 0) / GB, egress_rate) if egress else 0.0
        rows.append(SampleCost(sample, compute, storage, transfer, compute + storage + transfer))
    return rows


def price_estimates(environments: list[dict]) -> list[str]:
    """A warning per compute environment billed at an estimated price (spot = on-demand x a fraction)."""
    return [
        f"Estimated price: {env['name']} is billed at {env['purchase']} ${env['pricePerHour']:.4f}/h, an estimate "
        "(on-demand x the catalog's flat spot fraction), not an observed spot price; its costs are estimates too."
        for env in environments
        if env.get("priceEstimated")
    ]


def run_data(
    summary: dict,
    run_id: str,
    region: str,
    samples: list[SampleCost],
    results: RunResults | None = None,
    basis: str | None = None,
) -> RunData:
    """The report's input from the API's run summary (with trace)."""
    environments = summary["cost"]["computeEnvironments"]
    sources = sorted({f"{env['priceSource']}" for env in environments if env.get("priceSource")})
    dates = sorted({str(env["priceAsOf"]) for env in environments if env.get("priceAsOf")})
    info = RunInfo(
        run_id=run_id,
        title=f"genobatch run {run_id}",
        created=datetime.now(UTC),
        region=region,
        pricing_source="; ".join(sources),
        pricing_date=", ".join(dates),
        pricing_estimates=tuple(price_estimates(environments)),
    )
    billed = [ComputeEnvironmentCost.from_summary(env) for env in environments]
    trace = [TraceRecord.from_mapping(record) for record in summary["trace"]]
    extra = {"sample_cost_basis": basis} if basis else {}
    return RunData(info=info, trace=trace, billed=billed, samples=samples, results=results, **extra)


def write_run_report(
    client: Client,
    run_id: str,
    out_dir: Path,
    *,
    outputs: Path | None = None,
    params: dict[str, str] | None = None,
    retention_days: float = 30,
    egress: bool = True,
    declared_outputs: tuple[str, ...] = (),
) -> ReportFiles:
    """Fetch the run's summary with its trace, and its results, and write the report into ``out_dir``."""
    selection = params or {"run": run_id}
    summary = fetch_summary(client, selection, trace=True)
    if not summary["trace"]:
        raise CliError(f"no attempts found for {selection}")
    results = RunResults.from_document(client.native_get("/genobatch/v1/runs/results", selection))
    region = client.region
    samples = sorted({r["sample"] for r in summary["trace"] if r.get("sample")}, key=natural_key)
    sizes = output_sizes(outputs, samples)
    declared = output_sizes(outputs, samples, declared_outputs) if declared_outputs else sizes
    rows = sample_rows(summary, sizes, region, client, retention_days, egress, declared)
    basis = cost_basis(summary, declared_outputs, retention_days, egress)
    from genobatch.report.writer import write_report  # matplotlib: loaded only when a report is written

    out_dir.mkdir(parents=True, exist_ok=True)
    return write_report(run_data(summary, run_id, region, rows, results, basis), out_dir)


@click.command()
@click.argument("run", required=False)
@click.option("--tag", "-t", help="Report on jobs tagged KEY=VALUE instead of a run.")
@click.option("--queue", "-q", help="Report on every job of a queue instead of a run.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Directory [./report-RUN].")
@click.option(
    "--outputs", type=click.Path(file_okay=False, path_type=Path), help="Outputs dir with one folder per sample."
)
@click.option("--retention-days", default=30.0, show_default=True, help="Days outputs are kept in S3 (storage cost).")
@click.option("--egress/--no-egress", default=True, show_default=True, help="Price downloading the outputs once.")
@click.option(
    "--declared-output",
    "declared_outputs",
    multiple=True,
    metavar="GLOB",
    help="A final output (glob relative to a sample's folder, repeatable); only these are priced as downloaded.",
)
@pass_client
def report(
    client: Client,
    run: str | None,
    tag: str | None,
    queue: str | None,
    out_dir: Path | None,
    outputs: Path | None,
    retention_days: float,
    egress: bool,
    declared_outputs: tuple[str, ...],
) -> None:
    """Write the run report: self-contained HTML, trace TSV, xlsx and charts."""
    params = selector_params(run, tag, queue)
    name = run or tag or queue
    files = write_run_report(
        client,
        name,
        out_dir or Path(f"report-{name}".replace("=", "-").replace(":", "-")),
        outputs=outputs,
        params=params,
        retention_days=retention_days,
        egress=egress,
        declared_outputs=declared_outputs,
    )
    click.echo(f"report: {files.html}\ntrace:  {files.trace_tsv}\nxlsx:   {files.xlsx}")
    if files.advice:
        Console().print(rightsizing_table(files.advice))


def rightsizing_table(advice: list[Advice]) -> Table:
    """The report's right-sizing in short: per definition the request, the advised one, and the saving with its
    share of the run's attributed cost (a cheap definition that should double reads small, not -100%)."""
    from genobatch.report.rightsizing import share_text

    def change(now: int, advised: int | None) -> str:
        return f"{now} → {'–' if advised is None else advised}"

    run_cost = sum(a.attributed_cost for a in advice)
    table = Table(title="Right-sizing (details in the report)", title_justify="left")
    table.add_column("job definition", overflow="fold")
    # The figures' columns wrap their headers rather than squeeze the name (rich shares space by header length).
    table.add_column("vCPUs now → advised", justify="right", max_width=10)
    table.add_column("MiB now → advised", justify="right", max_width=14)
    table.add_column("saving (share of run)", justify="right", max_width=18)
    for a in advice:
        saving = "unknown" if a.saving is None else f"{units.money(a.saving)} ({share_text(a.share_of(run_cost))})"
        cpus = change(a.requested_cpus[1], a.recommended_cpus)
        table.add_row(a.job_definition, cpus, change(a.requested_memory_mib[1], a.recommended_memory_mib), saving)
    table.caption = (
        "saving: attributed cost minus the estimate with the advised request (negative: it costs more); "
        f"share of run: over the run's attributed {units.money(run_cost)}"
    )
    table.caption_justify = "left"
    return table


COMMANDS = [report]

"""``genobatch report RUN``: the run report (HTML, trace TSV, xlsx, charts) for any group of jobs.

The numbers come from the server's run summary (``GET /genobatch/v1/runs``), so the report's totals
are the API's. Per-sample storage and transfer are estimated from the sample's output files, with
the assumptions stated in the report: outputs kept ``--retention-days`` in S3 Standard and
downloaded once over the internet (``--no-egress`` to leave that out).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from genobatch.cli.client import Client
from genobatch.cli.cost_cmd import fetch_summary, selector_params
from genobatch.cli.errors import CliError
from genobatch.cost.billing import storage_cost, transfer_cost
from genobatch.report import (
    ComputeEnvironmentCost,
    ReportFiles,
    RunData,
    RunInfo,
    SampleCost,
    TraceRecord,
    write_report,
)

pass_client = click.make_pass_decorator(Client)
GB = 1 << 30
RUN_LEVEL = "(run)"  # jobs that serve every sample (e.g. building the reference)


def output_sizes(outputs: Path | None, samples: list[str]) -> dict[str, int]:
    """Bytes of every file under ``outputs/<sample>/``, per sample (0 where there is none)."""
    sizes = {}
    for sample in samples:
        directory = outputs / sample if outputs else None
        files = directory.rglob("*") if directory and directory.is_dir() else ()
        sizes[sample] = sum(path.stat().st_size for path in files if path.is_file())
    return sizes


def sample_rows(
    summary: dict, sizes: dict[str, int], region: str, client: Client, retention_days: float, egress: bool
) -> list[SampleCost]:
    """Compute (the sample's attributed cost plus an even share of run-level jobs), storage, transfer."""
    from genobatch.run import price_catalog

    catalog = price_catalog(client.data_dir)
    storage_rate = catalog.storage_rate("s3_standard", region)
    egress_rate = catalog.transfer_rate("internet_egress", region)
    by_sample = dict(summary["cost"]["bySample"])
    shared = by_sample.pop("(none)", 0.0) + by_sample.pop(RUN_LEVEL, 0.0)
    samples = sorted(by_sample, key=lambda name: (len(name), name))
    rows = []
    for sample in samples:
        compute = by_sample[sample] + shared / len(samples)
        gigabytes = sizes.get(sample, 0) / GB
        storage = storage_cost(gigabytes, retention_days, storage_rate)
        transfer = transfer_cost(gigabytes, egress_rate) if egress else 0.0
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


def run_data(summary: dict, run_id: str, region: str, samples: list[SampleCost]) -> RunData:
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
    billed = [
        ComputeEnvironmentCost(
            compute_environment=env["name"],
            instance_seconds=env["billedInstanceSeconds"],
            billed_cost=env["billedUsd"],
            instance_type=env["instanceType"] or "",
            instance_vcpus=env["instanceVcpus"],
            instance_memory_mib=env["instanceMemoryMib"],
            instance_gpus=env["instanceGpus"],
        )
        for env in environments
    ]
    trace = [TraceRecord.from_mapping(record) for record in summary["trace"]]
    return RunData(info=info, trace=trace, billed=billed, samples=samples)


def write_run_report(
    client: Client,
    run_id: str,
    out_dir: Path,
    *,
    outputs: Path | None = None,
    params: dict[str, str] | None = None,
    retention_days: float = 30,
    egress: bool = True,
) -> ReportFiles:
    """Fetch the run's summary with its trace and write the report into ``out_dir``."""
    summary = fetch_summary(client, params or {"run": run_id}, trace=True)
    if not summary["trace"]:
        raise CliError(f"no attempts found for {params or {'run': run_id}}")
    region = client.region
    samples = sorted({r["sample"] for r in summary["trace"] if r.get("sample")})
    rows = sample_rows(summary, output_sizes(outputs, samples), region, client, retention_days, egress)
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_report(run_data(summary, run_id, region, rows), out_dir)


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
    )
    click.echo(f"report: {files.html}\ntrace:  {files.trace_tsv}\nxlsx:   {files.xlsx}")


COMMANDS = [report]

"""``genobatch cost`` (what a run, tag or queue cost) and ``genobatch prices`` (the price catalog)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from genobatch.cli.client import Client
from genobatch.cli.errors import CliError
from genobatch.cost.catalog import Figure

pass_client = click.make_pass_decorator(Client)


def selector_options(command):  # noqa: ANN001, ANN201 - a click decorator
    """``--run`` / ``--tag`` / ``--queue``: which jobs (exactly one)."""
    command = click.option("--queue", "-q", help="Every job of this job queue.")(command)
    command = click.option("--tag", "-t", help="Jobs tagged KEY=VALUE.")(command)
    return click.option("--run", "-r", help="Jobs tagged genobatch:run=RUN (what `genobatch demo` prints).")(command)


def selector_params(run: str | None, tag: str | None, queue: str | None) -> dict[str, str]:
    given = {key: value for key, value in (("run", run), ("tag", tag), ("queue", queue)) if value}
    if len(given) != 1:
        raise CliError("give exactly one of --run, --tag or --queue")
    return given


def fetch_summary(client: Client, params: dict[str, str], trace: bool = False) -> dict:
    """The native run summary (progress and cost, optionally the trace) of the selected jobs."""
    return client.native_get("/genobatch/v1/runs", {**params, **({"trace": "1"} if trace else {})})


def usd(value: float) -> str:
    """Dollars with enough significant digits that a fraction of a cent does not read as $0.0000."""
    from genobatch.report.units import money

    return money(value)


#: The bySample keys of jobs that belong to no one sample (the reference every sample aligns to).
SHARED_SAMPLE_KEYS = ("(none)", "(run)")


def _environments_table(environments: list[dict]) -> Table:
    """Per compute environment; six columns whose cells wrap, so it reads whole at 80 columns.

    The instance type and how it is bought share a cell (two lines), and so do the price and its date: eight
    one-line columns needed 83 columns and rich cut every header and amount ("purcha...", "$0.000...")."""
    table = Table(title="Compute environments", title_justify="left")
    table.add_column("environment", overflow="fold")
    table.add_column("instance, purchase", overflow="fold")
    table.add_column("$/h (as of)", justify="right")
    # Amounts are never cut: a wrapped name costs a line, a cut amount is a wrong number.
    table.add_column("attributed", justify="right", no_wrap=True)
    table.add_column("billed", justify="right", no_wrap=True)
    table.add_column("instances", justify="right", no_wrap=True)
    for env in environments:
        purchase = env["purchase"] + (" (estimated price)" if env.get("priceEstimated") else "")
        table.add_row(
            env["name"],
            f"{env['instanceType'] or '(host)'}\n{purchase}",
            f"{usd(env['pricePerHour'])}\n({env.get('priceAsOf') or 'date unknown'})",
            usd(env["attributedUsd"]),
            usd(env["billedUsd"]),
            str(env["instances"]),
        )
    return table


def _samples_table(cost: dict) -> Table:
    """Per sample in natural order: its jobs' attributed cost and its share of the bill (what the user pays).

    The billed share splits the billed cost in proportion to attributed cost, jobs of no one sample shared
    evenly - the basis of the run report's per-sample compute cost."""
    from genobatch.report.results import natural_key

    by_sample = dict(cost["bySample"])
    shared = sum(by_sample.pop(key, 0.0) for key in SHARED_SAMPLE_KEYS)
    samples = sorted(by_sample, key=natural_key)
    attributed, billed = cost["attributedUsd"], cost["billedUsd"]
    scale = billed / attributed if attributed and billed else 1.0
    table = Table(title="Cost per sample", title_justify="left")
    table.add_column("sample", overflow="fold")
    table.add_column("attributed", justify="right", no_wrap=True)
    table.add_column("billed share", justify="right", no_wrap=True)
    for sample in samples:
        billed_share = (by_sample[sample] + shared / len(samples)) * scale
        table.add_row(sample, usd(by_sample[sample]), usd(billed_share))
    if shared:
        table.add_row("(shared by all samples)", usd(shared), "split evenly")
    table.caption = (
        "attributed: the sample's jobs' share of their instances; billed share: the bill (idle time included) "
        "split in proportion to attributed, shared jobs split evenly"
    )
    table.caption_justify = "left"
    return table


def cost_tables(summary: dict) -> list[Table]:
    """Rich tables: per compute environment, per sample (if any), totals."""
    cost = summary["cost"]
    tables = [_environments_table(cost["computeEnvironments"])]
    if any(key not in SHARED_SAMPLE_KEYS for key in cost["bySample"]):
        tables.append(_samples_table(cost))
    totals = Table(title="Totals", title_justify="left", show_header=False)
    totals.add_column(overflow="fold")
    totals.add_column(justify="right", no_wrap=True)
    totals.add_row("attributed (each job's share of its instance)", usd(cost["attributedUsd"]))
    totals.add_row("billed (instance time held, idle and 60 s minimums included)", usd(cost["billedUsd"]))
    totals.add_row("vCPU-hours", f"{cost['vcpuHours']:.4f}")
    tables.append(totals)
    return tables


@click.command()
@selector_options
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
@pass_client
def cost(client: Client, run: str | None, tag: str | None, queue: str | None, as_json: bool) -> None:
    """What a run, a tag or a queue cost: attributed and billed, per compute environment and sample."""
    summary = fetch_summary(client, selector_params(run, tag, queue))
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    console = Console()
    for table in cost_tables(summary):
        console.print(table)
    for env in summary["cost"]["computeEnvironments"]:
        if env.get("priceEstimated"):
            console.print(
                f"{env['name']}: the {env['purchase']} price is an estimate (on-demand x the catalog's flat spot "
                "fraction), not an observed spot price; its costs are estimates too."
            )


@click.group()
def prices() -> None:
    """The price catalog genobatch bills against (shipped, dated; refreshable from AWS)."""


def _spot_cell(spot: Figure) -> str:
    return f"{spot.value:.4f} (estimate)" if spot.estimate else f"{spot.value:.4f}"


@prices.command("show")
@click.argument("instance_types", nargs=-1)
@click.option("--region", default="us-east-1", show_default=True)
@pass_client
def prices_show(client: Client, instance_types: tuple[str, ...], region: str) -> None:
    """Instance types with vCPUs, memory, GPUs and on-demand/spot $/h (with source, date and confidence).

    A type with no price in the region is listed as missing, with the reason the catalog gives.
    """
    from genobatch.cost.catalog import UnknownRegion
    from genobatch.run import price_catalog

    catalog = price_catalog(client.data_dir)
    try:
        names = [catalog.instance(name).name for name in instance_types] or catalog.instance_types()
    except LookupError as error:
        raise CliError(str(error)) from None
    reasons = {name: why for name, _, why in catalog.missing(region)}
    table = Table(title=f"Prices in {region}", title_justify="left")
    columns = ("type", "vCPUs", "GiB", "GPUs", "on-demand $/h", "spot $/h", "confidence", "source", "as of")
    for column in columns:
        table.add_column(column)
    estimates = missing = 0
    for name in names:
        instance = catalog.instance(name)
        shape = (name, str(instance.vcpus), f"{instance.memory_gib:g}", str(instance.gpus))
        try:
            on_demand = catalog.price(name, region, "on-demand")
        except UnknownRegion:
            missing += 1
            table.add_row(*shape, "missing", "missing", "-", reasons.get(name, "no figure in the catalog"), "-")
            continue
        spot = catalog.price(name, region, "spot")
        estimates += spot.estimate
        confidence = on_demand.confidence if spot.estimate else f"{on_demand.confidence} / spot {spot.confidence}"
        table.add_row(*shape, f"{on_demand.value:.4f}", _spot_cell(spot), confidence, on_demand.source, on_demand.as_of)
    console = Console()
    console.print(table)
    if estimates:
        fraction = ", ".join(
            f"{category} {catalog.spot_fraction(category).value:g}" for category in ("default", "gpu", "fpga")
        )
        console.print(
            f"{estimates} spot prices marked (estimate) are on-demand x a flat fraction ({fraction}), not observed "
            "spot prices; `genobatch prices update` reads real ones from DescribeSpotPriceHistory."
        )
    if missing:
        console.print(f"{missing} type(s) with no price in {region}: listed as missing, with why.")


@prices.command("update")
@click.option(
    "--region", "regions", multiple=True, default=("us-east-1", "us-west-2", "eu-central-1"), show_default=True
)
@click.option("--type", "instance_types", multiple=True, help="Instance types (default: every type in the catalog).")
@click.option("--no-spot", is_flag=True, help="Only on-demand prices.")
@click.option(
    "--offer-file",
    metavar="PATH_OR_URL",
    help="Read on-demand prices from an AWS price list offer file (EC2, JSON or CSV) instead of the Pricing API: "
    "no credentials needed. Offer files carry no spot prices.",
)
@pass_client
def prices_update(
    client: Client, regions: tuple[str, ...], instance_types: tuple[str, ...], no_spot: bool, offer_file: str | None
) -> None:
    """Refresh prices from the AWS Pricing API (credentials and network) or an AWS offer file (--offer-file)."""
    from genobatch.cost.offer_file import OfferFileError, update_from_offer_file
    from genobatch.cost.pricing_api import PricingUnavailable, update_catalog
    from genobatch.run import price_catalog

    types = list(instance_types) or list(price_catalog(client.data_dir).instance_types())
    path = Path(client.data_dir) / "prices.json"
    try:
        if offer_file:
            result = update_from_offer_file(path, offer_file, list(regions), types)
        else:
            result = update_catalog(path, list(regions), types, spot=not no_spot)
    except PricingUnavailable as error:
        raise CliError(f"cannot reach the AWS Pricing API: {error}") from None
    except OfferFileError as error:
        raise CliError(f"--offer-file: {error}") from None
    click.echo(f"updated {len(result.updated)} prices in {path}; missing: {len(result.missing)}")
    for gap in result.missing:
        click.echo(f"  missing: {gap}")


COMMANDS = [cost, prices]

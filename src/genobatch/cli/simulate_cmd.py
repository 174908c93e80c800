"""``genobatch simulate PLAN``: capacity planning with the real scheduler under a virtual clock."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from genobatch.cli.client import Client
from genobatch.cli.cost_cmd import usd
from genobatch.cli.errors import CliError

pass_client = click.make_pass_decorator(Client)

#: metric -> (label, how to print a value)
ROWS: tuple[tuple[str, str, str], ...] = (
    ("makespan_h", "makespan (first submission to last exit)", "{:,.2f} h"),
    ("wait_mean_min", "queue wait, mean per attempt", "{:,.1f} min"),
    ("wait_p95_min", "queue wait, 95th percentile", "{:,.1f} min"),
    ("utilisation", "utilisation (busy / running vCPU-time)", "{:.1%}"),
    ("vcpu_hours", "vCPU-hours used by attempts", "{:,.0f}"),
    ("attempts", "attempts", "{:,.0f}"),
    ("interruptions", "spot interruptions", "{:,.0f}"),
    ("failed_jobs", "jobs FAILED", "{:,.0f}"),
    ("attributed_usd", "attributed cost (each job's share)", "usd"),
    ("billed_usd", "billed cost (attempts packed on instances)", "usd"),
    ("billed_instance_hours", "billed instance-hours", "{:,.1f}"),
    ("fleet_instance_hours", "fleet instance-hours (incl. boot, scale-down)", "{:,.1f}"),
    ("fleet_usd", "fleet cost (simulated instances)", "usd"),
)


def _cell(value: float, style: str) -> str:
    return usd(value) if style == "usd" else style.format(value)


def _environments_table(document: dict) -> Table:
    table = Table(title="Compute environments", title_justify="left")
    for column in ("name", "instance type", "vCPUs", "GiB", "purchase", "$/h", "price as of"):
        table.add_column(column, justify="right" if column in ("vCPUs", "GiB", "$/h") else "left")
    for name, env in document["computeEnvironments"].items():
        table.add_row(
            name,
            env["instanceType"] or "-",
            f"{env['vcpus']:g}",
            f"{env['memoryMib'] / 1024:g}",
            env["purchase"] + (" (estimated price)" if env["priceEstimated"] else ""),
            usd(env["pricePerHour"]),
            env["priceAsOf"] or "-",
        )
    return table


def _results_table(document: dict) -> Table:
    seeds = document["seeds"]
    title = f"{document['plan']}: {document['jobs']:,} jobs, {len(seeds)} seed(s) ({seeds[0]}..{seeds[-1]})"
    table = Table(title=title, title_justify="left")
    table.add_column("result")
    for column in ("p10", "p50", "p90"):
        table.add_column(column, justify="right")
    percentiles = document["percentiles"]
    for key, label, style in ROWS:
        row = percentiles[key]
        table.add_row(label, *(_cell(row[p], style) for p in ("p10", "p50", "p90")))
    return table


def _timeline_table(document: dict) -> Table:
    timeline = document["timeline"]
    table = Table(title=f"Utilisation over time (seed {timeline['seed']}, the median makespan)", title_justify="left")
    for column in ("from", "to", "busy vCPUs", "running vCPUs", "utilisation", ""):
        table.add_column(column, justify="left" if column == "" else "right")
    for interval in timeline["intervals"]:
        share = interval["utilisation"]
        table.add_row(
            f"{interval['startS'] / 3600:.2f} h",
            f"{interval['endS'] / 3600:.2f} h",
            f"{interval['busyVcpus']:,.0f}",
            f"{interval['fleetVcpus']:,.0f}",
            f"{share:.0%}",
            "█" * round(20 * min(1.0, share)),
        )
    return table


@click.command()
@click.argument("plan_file", metavar="PLAN", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seeds", type=click.IntRange(1, 1000), help="Simulated runs (seed, seed+1, ...) [default: the plan's].")
@click.option("--seed", "first_seed", type=int, default=1, show_default=True, help="The first seed.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@pass_client
def simulate(client: Client, plan_file: Path, seeds: int | None, first_seed: int, as_json: bool) -> None:
    """How long a workload takes and what it costs: the real scheduler under a virtual clock.

    PLAN is a YAML file (compute environments, queues, job definitions, workload; see
    examples/simulate/). No server is needed; prices come from the catalog (with this data
    directory's `genobatch prices update` override).
    """
    from genobatch.run import price_catalog
    from genobatch.simulate.plan import PlanError, load_plan
    from genobatch.simulate.summary import simulate as run_simulation

    try:
        plan = load_plan(plan_file)
        summary = run_simulation(plan, price_catalog(client.data_dir), seeds, first_seed)
    except PlanError as error:
        raise CliError(str(error).replace("<plan>", str(plan_file))) from None
    document = summary.document()
    if as_json:
        click.echo(json.dumps(document, indent=2))
        return
    console = Console()
    console.print(_environments_table(document))
    console.print(_results_table(document))
    if document["timeline"]["intervals"]:
        console.print(_timeline_table(document))
    for name, env in document["computeEnvironments"].items():
        if env["priceEstimated"]:
            console.print(
                f"{name}: the spot price is an estimate (on-demand x the catalog's flat spot fraction), not an "
                "observed spot price; its costs are estimates too."
            )
    console.print(
        "billed = the attempts packed onto instances of the type, as `genobatch cost` bills a real run; fleet = the "
        "simulated instances, billed from launch (boot included) to release. "
        f"Simulated in {summary.wall_s:.2f} s ({summary.events:,} events)."
    )


COMMANDS = [simulate]

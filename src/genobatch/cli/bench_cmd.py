"""``genobatch bench run PLAN`` and ``genobatch bench report RUN``: which hardware is the best buy."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from genobatch.cli.client import Client
from genobatch.cli.errors import CliError

pass_client = click.make_pass_decorator(Client)


@click.group()
def bench() -> None:
    """Benchmark tools across targets: timings, throughput, cost per workload, equivalence of outputs."""


def _load_plan(path: Path):  # noqa: ANN202 - a Plan
    from genobatch.benchmark.plan import PlanError, load_plan

    try:
        return load_plan(path)
    except PlanError as error:
        problems = "\n".join(f"  {where}: {problem}" for where, problem in error.problems)
        raise CliError(f"invalid benchmark plan {path}:\n{problems}") from None


def wrapped(lines: list[str]) -> list[str]:
    """Sentences wrapped at word boundaries to the terminal's width, continuations indented under their line, so
    a recommendation at 80 columns does not break mid-word ("instanc|e"). Piped output keeps one line each
    (``stdout_console``'s pipe width); equivalence records are not passed here: they are copied whole."""
    import textwrap

    from genobatch.cli.render import stdout_console

    width = stdout_console().width
    out = []
    for line in lines:
        indent = " " * (len(line) - len(line.lstrip(" ")))
        out += textwrap.wrap(
            line, width, subsequent_indent=indent + "  ", break_long_words=False, break_on_hyphens=False
        ) or [line]
    return out


def write_report(directory: Path) -> Path:
    """Analyse a saved run, print its summary, ratios, recommendation and equivalence verdicts, and write its
    report; returns the HTML page."""
    from genobatch.benchmark.analysis import analyse
    from genobatch.benchmark.report import write_benchmark_report
    from genobatch.benchmark.report_terminal import comparison_lines, equivalence_lines, summary_lines

    results = analyse(directory)
    for line in wrapped(summary_lines(results) + comparison_lines(results)) + equivalence_lines(results):
        click.echo(line)
    return write_benchmark_report(results, directory / "report").html


@bench.command("run")
@click.argument("plan_path", metavar="PLAN", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("benchmarks"),
    show_default=True,
    help="Where run directories go.",
)
@pass_client
def bench_run(client: Client, plan_path: Path, out_dir: Path) -> None:
    """Run every tool x configuration x target x repeat of PLAN as array jobs, then write the report."""
    from genobatch.benchmark import runner
    from genobatch.benchmark.plan import PlanError
    from genobatch.run import price_catalog

    plan = _load_plan(plan_path)
    console = Console()
    targets = runner.ensure_targets(client.batch, plan, price_catalog(client.data_dir))
    definitions = runner.register_tools(client.batch, plan)
    run_id = runner.new_run_id(plan)
    directory = (out_dir / run_id).resolve()
    try:
        runs = list(runner.instance_runs(plan, targets, directory))
    except PlanError as error:  # a target the catalog sized too small for a tool (its GPUs, FPGAs, vCPUs)
        raise CliError(str(error)) from None
    # soft_wrap: the path is printed whole on one line, to be copied, however narrow the terminal.
    console.print(f"benchmark [bold]{run_id}[/]: {len(runs)} instance runs, results in {directory}", soft_wrap=True)
    results = []
    columns = (
        TextColumn("[bold]instance runs"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    job_id = None
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("", total=len(runs))
            for run in runs:
                inputs = runner.write_shard_scripts(plan, run)
                job_id = runner.submit(client.batch, plan, run, definitions[run.tool.name], run_id)

                def show(detail: dict, run: runner.InstanceRun = run) -> None:
                    progress.update(task, description=f"{run.label}: {detail['status'].lower()}")

                runner.wait(client.batch, job_id, show, shards=run.shards)
                results.extend(runner.collect(client.batch, client.native_get, plan, run, job_id, inputs))
                runner.save(directory, plan, run_id, targets, results)
                progress.advance(task)
    except runner.NeverPlaced as error:
        raise CliError(f"{error.label} can never run: {error.reason} (its job {error.job_id} was terminated)") from None
    except KeyboardInterrupt:
        if job_id is not None:
            client.batch.terminate_job(jobId=job_id, reason="Cancelled by the user (Ctrl-C in genobatch bench run)")
        console.print(f"[yellow]terminated the benchmark's running job {job_id}; results so far in {directory}[/]")
        raise SystemExit(130) from None
    failed = sum(1 for r in results if r.status != "SUCCEEDED")
    console.print(f"report: [bold]{write_report(directory)}[/]")
    if failed:
        raise CliError(f"{failed} shards failed; see the report and `genobatch logs`")


@bench.command("report")
@click.argument("run_dir", metavar="RUN", type=click.Path(exists=True, file_okay=False, path_type=Path))
def bench_report(run_dir: Path) -> None:
    """Recompute and write the report (xlsx per region, PNG charts, HTML) of a benchmark run directory."""
    click.echo(f"report: {write_report(run_dir.resolve())}")


COMMANDS = [bench]

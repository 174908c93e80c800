"""How fast `genobatch simulate` plays seed 001's campaign (67,000 genomes), against two baselines.

Runs in one process, interleaved, ``--repeats`` times each:

* **campaign**: examples/simulate/bactopia.yaml, one seed (67,000 jobs through the real scheduler,
  plus the cost and outcome computation) - the requirement is under 10 s on this machine;
* **tenth**: the same plan with 6,700 genomes. Time per job, campaign over tenth, near 1 means the
  simulation scales linearly with the workload (an O(n^2) path in the scheduler or the simulator
  would show here as a ratio near 10);
* **floor**: a bare heapq event loop pushing and popping the campaign's number of events, the
  least any discrete-event simulation in Python pays. campaign / floor is the price of running the
  real scheduler and the cost code instead of a toy model.

Prints medians, events/s and the load average (a 1-minute load above the core count is not a
quiet-host number). Usage: ``python bench/simulate_campaign.py [--repeats 3] [--genomes 67000]``.
"""

from __future__ import annotations

import argparse
import heapq
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "examples" / "simulate" / "bactopia.yaml"


def _plan(genomes: int):
    from genobatch.simulate.plan import parse_plan

    document = yaml.safe_load(PLAN.read_text())
    document["workload"][0]["count"] = genomes
    return parse_plan(document, PLAN.parent, str(PLAN))


def _simulate(plan, catalog) -> tuple[float, float, int, object]:
    from genobatch.simulate.summary import simulate

    wall, cpu = time.perf_counter(), time.process_time()
    summary = simulate(plan, catalog, seeds=1)
    return time.perf_counter() - wall, time.process_time() - cpu, summary.events, summary.outcomes[0]


def _floor(events: int) -> tuple[float, float]:
    rng = random.Random(1)
    wall, cpu = time.perf_counter(), time.process_time()
    queue: list[tuple[float, int]] = []
    for i in range(512):
        heapq.heappush(queue, (rng.random() * 3300, i))
    done = 0
    while done < events:
        now, i = heapq.heappop(queue)
        heapq.heappush(queue, (now + rng.lognormvariate(8.1, 0.1), i))
        done += 1
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--genomes", type=int, default=67_000)
    args = parser.parse_args()
    from genobatch.cost.catalog import load_catalog

    catalog = load_catalog(None)
    campaign, tenth = _plan(args.genomes), _plan(args.genomes // 10)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    print(f"# commit {commit.stdout.strip()} python {sys.version.split()[0]} nproc {os.cpu_count()}")
    print(f"# load at start {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows: dict[str, list[tuple[float, float, int]]] = {"campaign": [], "tenth": [], "floor": []}
    outcome = None
    for repeat in range(args.repeats):
        wall, cpu, events, outcome = _simulate(campaign, catalog)
        rows["campaign"].append((wall, cpu, events))
        twall, tcpu, tevents, _ = _simulate(tenth, catalog)
        rows["tenth"].append((twall, tcpu, tevents))
        fwall, fcpu = _floor(events)
        rows["floor"].append((fwall, fcpu, events))
        load = os.getloadavg()[0]
        print(
            f"repeat {repeat + 1}: campaign {wall:.2f} s (cpu {cpu:.2f}), tenth {twall:.2f} s (cpu {tcpu:.2f}), "
            f"floor {fwall:.3f} s; load {load:.2f}"
        )
    median = {
        name: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v)) for name, v in rows.items()
    }
    events = rows["campaign"][0][2]
    per_job = median["campaign"][0] / args.genomes
    per_job_tenth = median["tenth"][0] / (args.genomes // 10)
    print(f"campaign: {args.genomes:,} jobs, {events:,} events")
    print(
        f"  median wall {median['campaign'][0]:.2f} s (cpu {median['campaign'][1]:.2f} s), "
        f"{events / median['campaign'][0]:,.0f} events/s, {per_job * 1e6:.0f} us per job"
    )
    print(f"  tenth: median wall {median['tenth'][0]:.2f} s, {per_job_tenth * 1e6:.0f} us per job")
    print(f"  per-job time campaign / tenth: {per_job / per_job_tenth:.2f} (1 = linear)")
    ratio = median["campaign"][0] / median["floor"][0]
    print(f"  floor (bare heapq loop, same events): {median['floor'][0]:.3f} s; campaign / floor {ratio:.0f}x")
    print(
        f"  result: makespan {outcome.makespan_s / 3600:.1f} h, {outcome.vcpu_hours:,.0f} vCPU-h, "
        f"billed ${outcome.billed_usd:,.0f}, {outcome.interruptions} interruptions, {outcome.attempts:,} attempts"
    )
    print(f"# load at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

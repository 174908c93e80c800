"""A plan simulated over several seeds: percentiles of each result, and the JSON document.

Seeds are ``first_seed .. first_seed + seeds - 1``; each is one :class:`.simulator.Simulation`.
Percentiles (p10, p50, p90) use linear interpolation between ranks, so with one seed all three are
that seed's value. The utilisation timeline shown is the one of the seed whose makespan is the
median.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from genobatch.cost.billing import BillingSpec
from genobatch.cost.catalog import Catalog
from genobatch.simulate.outcome import Outcome, _percentile, outcome_of
from genobatch.simulate.plan import Plan
from genobatch.simulate.simulator import Simulation, billing_specs

PERCENTILES = (("p10", 0.10), ("p50", 0.50), ("p90", 0.90))


@dataclass(frozen=True)
class Summary:
    """Every seed's outcome, the billing models used, and how long simulating took."""

    plan: Plan
    specs: Mapping[str, BillingSpec]
    outcomes: tuple[Outcome, ...]
    wall_s: float

    def percentiles(self) -> dict[str, dict[str, float]]:
        """metric -> {p10, p50, p90, mean} over seeds."""
        table: dict[str, dict[str, float]] = {}
        for name in self.outcomes[0].metrics():
            values = sorted(outcome.metrics()[name] for outcome in self.outcomes)
            row = {label: _percentile(values, q) for label, q in PERCENTILES}
            row["mean"] = sum(values) / len(values)
            table[name] = row
        return table

    @property
    def median_outcome(self) -> Outcome:
        ordered = sorted(self.outcomes, key=lambda o: (o.makespan_s, o.seed))
        return ordered[(len(ordered) - 1) // 2]

    @property
    def events(self) -> int:
        return sum(o.events for o in self.outcomes)

    def document(self) -> dict:
        """The machine-readable result (``genobatch simulate --json``)."""
        median = self.median_outcome
        return {
            "plan": self.plan.name,
            "region": self.plan.region,
            "seeds": [o.seed for o in self.outcomes],
            "jobs": self.plan.total_jobs,
            "percentiles": self.percentiles(),
            "computeEnvironments": {
                name: {
                    "instanceType": spec.instance_type,
                    "vcpus": spec.vcpus,
                    "memoryMib": spec.memory_mib,
                    "gpus": spec.gpus,
                    "purchase": spec.purchase,
                    "pricePerHour": spec.price_per_hour,
                    "priceSource": spec.price_source,
                    "priceAsOf": spec.price_as_of,
                    "priceEstimated": spec.price_estimated,
                }
                for name, spec in self.specs.items()
            },
            "runs": [
                {
                    "seed": o.seed,
                    **o.metrics(),
                    "makespan_s": o.makespan_s,
                    "jobsByStatus": o.jobs,
                    "injectedFailures": o.injected_failures,
                    "instancesLaunched": o.instances_launched,
                    "waitP50Min": o.wait_p50_s / 60,
                    "waitMaxMin": o.wait_max_s / 60,
                    "environments": o.environments,
                    "events": o.events,
                }
                for o in self.outcomes
            ],
            "timeline": {
                "seed": median.seed,
                "intervals": [
                    {
                        "startS": i.start_s,
                        "endS": i.end_s,
                        "busyVcpus": i.busy_vcpus,
                        "fleetVcpus": i.fleet_vcpus,
                        "utilisation": i.utilisation,
                    }
                    for i in median.timeline
                ],
            },
            "simulation": {"wallSeconds": self.wall_s, "events": self.events},
        }


def simulate(plan: Plan, catalog: Catalog, seeds: int | None = None, first_seed: int = 1) -> Summary:
    """Run ``plan`` once per seed (``seeds`` default: the plan's) and collect the outcomes."""
    specs = billing_specs(plan, catalog)
    count = seeds if seeds is not None else plan.seeds
    if count < 1:
        raise ValueError("seeds must be at least 1")
    started = time.perf_counter()
    outcomes = tuple(
        outcome_of(Simulation(plan, specs, seed).run(), specs) for seed in range(first_seed, first_seed + count)
    )
    return Summary(plan, specs, outcomes, time.perf_counter() - started)

"""Seed 001's campaign simulated from its inputs and compared with what was published.

R. Petit, "Using AWS Batch to process 67,000 genomes with Bactopia" (2020-12-07). Inputs from the
write-up: 67,000 genomes submitted at once, "nearly all jobs took around 55 minutes ... using only
4-cores and 16GB", spot instances, us-east-1, done "in 5 days". Published: 258,670 CPU hours and
$7,552 of EC2 for the campaign *and* its testing ("close to 70,000 genomes" in all).

Assumed, because the write-up does not say (examples/simulate/bactopia.yaml): m5.xlarge, maxvCpus
2,048, 3 min boot, 0.02 spot interruptions per instance-hour, a lognormal spread of sigma 0.1. The
maxvCpus is what the published duration implies (67,000 x 55 min x 4 vCPUs / 120 h = 2,047), so
the duration check tests what the simulation adds to that arithmetic - boot, the tail, reruns after
interruptions - not the concurrency itself. The gaps are stated in the README.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from genobatch.cost.catalog import load_catalog
from genobatch.simulate.plan import load_plan
from genobatch.simulate.summary import simulate

pytestmark = [pytest.mark.slow, pytest.mark.no_store]

PLAN = Path(__file__).resolve().parent.parent / "examples" / "simulate" / "bactopia.yaml"
CAMPAIGN_GENOMES = 67_000
BILLED_GENOMES = 70_000  # "When I add up the testing and final processing I probably processed close to 70,000"
PUBLISHED_CPU_HOURS = 258_670
PUBLISHED_EC2_USD = 7_552
PUBLISHED_DAYS = 5  # "In 5 days, I processed 67,000 Staphylococcus aureus genomes"


@pytest.fixture(scope="module")
def campaign():
    catalog = load_catalog(None)
    summary = simulate(load_plan(PLAN), catalog, seeds=1)
    return summary, catalog


def test_every_genome_is_processed(campaign):
    summary, _ = campaign
    (outcome,) = summary.outcomes
    assert outcome.jobs == {"SUCCEEDED": CAMPAIGN_GENOMES}
    assert outcome.interruptions > 0 and outcome.attempts > CAMPAIGN_GENOMES  # reclaimed work was rerun


def test_cpu_hours_per_genome_within_3_percent_of_the_published_bill(campaign):
    """Per genome, because the bill covers ~70,000 genomes and the campaign 67,000.

    Seen: 3.72 h per genome simulated vs 3.695 published (+0.6%); in total 249,088 vs 258,670
    (-3.7%), the testing genomes being the difference. 3%: "around 55 minutes" (+-0.9%), "close to
    70,000" (+-1.5%) and the assumed interruption rate (each reclaimed attempt's work is redone).
    """
    summary, _ = campaign
    (outcome,) = summary.outcomes
    simulated = outcome.vcpu_hours / CAMPAIGN_GENOMES
    published = PUBLISHED_CPU_HOURS / BILLED_GENOMES
    assert simulated == pytest.approx(published, rel=0.03)
    assert outcome.vcpu_hours == pytest.approx(PUBLISHED_CPU_HOURS * CAMPAIGN_GENOMES / BILLED_GENOMES, rel=0.03)


def test_duration_within_10_percent_of_five_days(campaign):
    """Seen: 122.8 h (5.1 days). 10%: "5 days" is rounded to the day; see the module doc on maxvCpus."""
    summary, _ = campaign
    (outcome,) = summary.outcomes
    assert outcome.makespan_s / 3600 == pytest.approx(PUBLISHED_DAYS * 24, rel=0.10)
    # Capacity was the limit, not the scheduler: the fleet ran near full the whole time.
    assert outcome.utilisation > 0.95


def test_ec2_cost_brackets_the_published_bill_by_the_catalogs_prices(campaign):
    """Spot (the catalog's estimate, 0.4 x on-demand) is below the bill, on-demand above it.

    Seen: $4,785 billed at the spot estimate, 36.6% under the published $7,552 (scaled to 67,000
    genomes: $7,228, so -33.8%); the same instance-hours on-demand: $11,963. The bill implies about
    0.61 x on-demand: causes in the README (2020 spot market vs a flat estimate, EBS in the EC2 line,
    capacity AWS Batch held that no job used).
    """
    summary, catalog = campaign
    (outcome,) = summary.outcomes
    on_demand = catalog.price("m5.xlarge", "us-east-1", "on-demand").value
    spot = catalog.price("m5.xlarge", "us-east-1", "spot")
    assert spot.estimate  # so the spot cost is an estimate too, and the report says so
    assert summary.specs["spot-m5"].price_estimated
    published_campaign = PUBLISHED_EC2_USD * CAMPAIGN_GENOMES / BILLED_GENOMES
    on_demand_usd = outcome.billed_instance_hours * on_demand
    assert outcome.billed_usd < published_campaign < on_demand_usd
    assert outcome.billed_usd == pytest.approx(outcome.billed_instance_hours * spot.value, rel=1e-9)
    assert outcome.billed_usd / published_campaign - 1 == pytest.approx(-0.338, abs=0.02)

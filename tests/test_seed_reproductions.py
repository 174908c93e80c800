"""Published figures of the seeds, reproduced from their inputs through genobatch's own code.

Each test feeds a seed's inputs (sizes, times, instance types, purchase options, prices) to the
code that computes genobatch's own reports - :func:`genobatch.benchmark.aggregate.summarise` for
seed 000's basecaller table, :mod:`genobatch.cost.accounting` and :mod:`genobatch.cost.billing`
with the price catalog for seed 001's bill - and compares the result with the published figure,
within a tolerance stated and justified next to it. Where a seed does not state an input, the
assumption is named where it is used; where a gap remains, the test pins its size and the README
("Reproducing published figures") gives its causes. No expected figure is derived from the
published answer it is compared with, with one exception stated where it is made: seed 000 publishes
no per-instance run time, so its run time is recovered from the published hours (see
:func:`seed_000_shards`) and only its $ column is an independent check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from genobatch.benchmark.aggregate import summarise, workload_cost
from genobatch.benchmark.plan import Plan, parse_plan, resolve_target
from genobatch.benchmark.results import ShardResult, TargetSummary
from genobatch.cost.accounting import Charge, attempt_costs, breakdown_table, vcpu_hours
from genobatch.cost.billing import billing_spec_from_compute_environment, storage_cost, transfer_cost
from genobatch.cost.catalog import load_catalog

pytestmark = pytest.mark.no_store  # uses no store: the PostgreSQL pass would only repeat it

GIB = 1024
GB_PER_TB = 1024  # the catalog's tiers are in AWS's binary GB/TB (10 TB = 10,240 GB)


def relative_gap(reproduced: float, published: float) -> float:
    """``reproduced / published - 1``: the signed gap of a reproduction."""
    return reproduced / published - 1


# --- seed 000: ONT basecaller benchmark (aws-samples/basecaller-performance-benchmarking) ----------------

# The 128-file subset the seed extrapolates from (bases counted from its output FASTQ) and the 30x
# human genome it extrapolates to (3,298,912,062 bases x 30), both from the seed.
SUBSET_BASES = 18_330_576_791
GENOME_30X_BASES = 3_298_912_062 * 30
GPUS = 8  # g5.48xlarge (8 A10G) and p3.16xlarge (8 V100): one shard per GPU, as the seed ran them

# (instance, basecaller, published h per 30x WGS, published $ per 30x WGS): dorado 0.3.2 / guppy 6.5.7,
# no modified bases (shared/reference/benchmarking.md).
PUBLISHED_000 = [
    ("g5.48xlarge", "dorado", 6.0, 122.50),
    ("g5.48xlarge", "guppy", 7.5, 152.37),
    ("p3.16xlarge", "dorado", 5.4, 166.00),
    ("p3.16xlarge", "guppy", 6.6, 203.26),
]
# The table's prices are eu-central-1 on-demand (one sheet per pricing region; $ / h is $20.4/h for
# g5.48xlarge and $30.7/h for p3.16xlarge in every row, which only eu-central-1 charges). g5.48xlarge:
# the seed repository's own price file (results/aws_pricing.json, price_list_date 2024-11-07,
# eu-central-1). p3.16xlarge is not in that file (the seed stopped testing it); its eu-central-1 price
# is read from genobatch's catalog.
SEED_G5_48XLARGE_EU_CENTRAL_1 = 20.3681
TABLE_REGION = "eu-central-1"
SEED_RUN_REGION = "us-west-2"  # where the seed deploys and runs


def seed_000_plan(tmp_path: Path, prices: dict[str, float | None], region: str) -> Plan:
    """The seed's benchmark as a genobatch plan: 2 basecallers x 2 instance types, 8 shards, no overhead.

    ``overhead_s: 0`` because the seed prices the basecaller's container time only (boot and image
    pull are left out); genobatch's default of 600 s would add 10 minutes of instance time to each row.
    """
    (tmp_path / "wgs_subset_128_files.pod5").write_bytes(b"pod5")
    tool: dict[str, Any] = {"resources": {"vcpus": 4, "memory": 16000, "gpus": 1}, "configurations": [{"name": "hac"}]}
    targets = []
    for instance_type, price in prices.items():
        target: dict[str, Any] = {"name": instance_type.replace(".", "-"), "compute_environment": "ce"}
        target.update(instance_type=instance_type, gpus_per_instance=GPUS, region=region)
        if price is not None:
            target["price_per_hour"] = price
        targets.append(target)
    return parse_plan(
        {
            "name": "seed-000",
            "dataset": {"files": ["wgs_subset_128_files.pod5"], "work": "bases"},
            "tools": [
                {**tool, "name": "dorado", "command": "dorado basecaller {inputs}", "parser": "dorado"},
                {**tool, "name": "guppy", "command": "guppy_basecaller {inputs}", "parser": "guppy"},
            ],
            "targets": targets,
            "sharding": "per-gpu",
            "extrapolate": {"name": "30x human genome", "units": GENOME_30X_BASES},
            "overhead_s": 0,
        },
        tmp_path,
    )


def seed_000_shards() -> list[ShardResult]:
    """Eight equal shards per published row, each basecalling 1/8 of the subset.

    The seed publishes no per-instance run time (its per-job records are in an HDF5 file that is not
    among the seeds), so the subset's run time is the published hours per 30x WGS with the seed's own
    extrapolation undone: ``h x 3600 x 18.331 / 98.967`` seconds. The shards are equal, so the seed's
    mean over GPUs and genobatch's longest shard agree; what is tested is genobatch's extrapolation
    and its per-second pricing, not the measurement.
    """
    shards = []
    for instance_type, basecaller, hours, _ in PUBLISHED_000:
        subset_s = hours * 3600 * SUBSET_BASES / GENOME_30X_BASES
        for gpu in range(GPUS):
            shards.append(
                ShardResult(
                    tool=basecaller,
                    configuration="hac",
                    target=instance_type.replace(".", "-"),
                    repeat=0,
                    shard=gpu,
                    job_id=f"{instance_type}-{basecaller}:{gpu}",
                    status="SUCCEEDED",
                    start_ms=0,
                    stop_ms=round(subset_s * 1000),
                    work=SUBSET_BASES / GPUS,
                )
            )
    return shards


def seed_000_rows(tmp_path: Path, prices: dict[str, float | None], region: str) -> dict[tuple[str, str], TargetSummary]:
    plan = seed_000_plan(tmp_path, prices, region)
    targets = [resolve_target(spec, load_catalog()) for spec in plan.targets]
    summaries = summarise(plan, targets, seed_000_shards())
    return {(s.target.instance_type, s.tool): s for s in summaries}


def test_seed_000_table_from_run_times_and_the_tables_prices(tmp_path: Path) -> None:
    """Every published row's hours and $ per 30x genome within 1%.

    Tolerance 1%: the published hours are rounded to 0.1 h (at 5.4-7.5 h that is up to +-0.9%), and
    the $ column was computed by the seed from the unrounded hours, so our $ (from rounded hours)
    can differ from it by as much; more than 1% would mean a wrong price, formula or extrapolation.
    """
    catalog = load_catalog()
    p3_price = catalog.price("p3.16xlarge", TABLE_REGION).value
    rows = seed_000_rows(
        tmp_path, {"g5.48xlarge": SEED_G5_48XLARGE_EU_CENTRAL_1, "p3.16xlarge": p3_price}, TABLE_REGION
    )
    assert len(rows) == len(PUBLISHED_000)
    gaps = {}
    for instance_type, basecaller, hours, usd in PUBLISHED_000:
        row = rows[(instance_type, basecaller)]
        assert row.repeats == 1 and row.shards == GPUS and row.failed_shards == 0
        assert abs(relative_gap(row.runtime_per_workload_h.median, hours)) < 0.01
        gaps[(instance_type, basecaller)] = relative_gap(row.cost_per_workload.median, usd)
    assert all(abs(gap) < 0.01 for gap in gaps.values()), gaps
    # Hand-worked: 6.0 h x $20.3681 = $122.21 (-0.24%); 7.5 h -> $152.76 (+0.26%);
    # 5.4 h x $30.584 = $165.15 (-0.51%); 6.6 h -> $201.85 (-0.69%).
    assert rows[("g5.48xlarge", "dorado")].cost_per_workload.median == pytest.approx(122.21, abs=0.01)
    assert rows[("p3.16xlarge", "guppy")].cost_per_workload.median == pytest.approx(6.6 * p3_price, abs=0.01)


def test_seed_000_table_with_the_catalogs_prices_where_the_seed_ran(tmp_path: Path) -> None:
    """Priced in us-west-2, where the seed ran, every $ figure is about 20% below the published one.

    The catalog has us-west-2 prices for both types, and the whole gap is the regional price ratio
    (us-west-2 / eu-central-1 is 0.80 for both types): the published table is the seed's
    eu-central-1 sheet. Tolerance: the ratio within 1% (the hours' rounding, as above).
    """
    catalog = load_catalog()
    rows = seed_000_rows(tmp_path, {"g5.48xlarge": None, "p3.16xlarge": None}, SEED_RUN_REGION)
    table_price = {
        "g5.48xlarge": SEED_G5_48XLARGE_EU_CENTRAL_1,
        "p3.16xlarge": catalog.price("p3.16xlarge", TABLE_REGION).value,
    }
    for instance_type, basecaller, hours, usd in PUBLISHED_000:
        row = rows[(instance_type, basecaller)]
        assert row.target.price_per_hour == catalog.price(instance_type, SEED_RUN_REGION).value
        regional_ratio = row.target.price_per_hour / table_price[instance_type]
        assert 0.78 < regional_ratio < 0.82  # us-west-2 is about 20% cheaper than Frankfurt
        assert row.cost_per_workload.median / usd == pytest.approx(regional_ratio, rel=0.01)
        assert abs(relative_gap(row.runtime_per_workload_h.median, hours)) < 0.01  # hours do not depend on price


# --- seed 001: Bactopia, 67,000 S. aureus genomes on AWS Batch (Petit, 2020-12-07) ------------------------

# Inputs the write-up states:
GENOMES = 70_000  # "When I add up the testing and final processing I probably processed close to 70,000"
MINUTES_PER_GENOME = 55  # "Nearly all jobs took around 55 minutes to complete using only 4-cores and 16GB"
VCPUS, MEMORY_MIB = 4, 16 * GIB
REGION = "us-east-1"  # "I ... tried all of the us-east-1 zones"
TRANSFER_TB, STORAGE_TB = 42, 84  # the usage column: results downloaded once, results stored (copied twice)
# Its published table (compared with, never used to compute):
PUBLISHED_CPU_HOURS = 258_670
PUBLISHED_EC2_USD, PUBLISHED_TRANSFER_USD, PUBLISHED_S3_USD, PUBLISHED_TOTAL_USD = 7_552, 3_566, 1_286, 12_408

# Not stated, assumed: the instance family. The write-up used spot instances ("optimizing EC2
# spot-instance types, such as using only smaller ones"), Intel only, sizes unnamed. m5 has exactly
# 4 GiB per vCPU, the jobs' ratio, so every size packs 4 vCPU / 16 GiB jobs without waste and the
# price per vCPU-hour is the same for every m5 size: the family is all that matters.
BACTOPIA_CE = {"computeEnvironmentName": "bactopia", "computeResources": {"type": "SPOT", "instanceTypes": ["m5"]}}


def bactopia_records(purchase: str = "SPOT") -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One 55-minute attempt per genome, and the compute environment's billing spec from the catalog."""
    ce = {**BACTOPIA_CE, "computeResources": {**BACTOPIA_CE["computeResources"], "type": purchase}}
    spec = billing_spec_from_compute_environment(
        ce, load_catalog(), REGION, host_vcpus=VCPUS, host_memory_mib=MEMORY_MIB
    )
    records = [
        {"job_id": f"g{i}", "attempt": 1, "start_ms": 0, "stop_ms": MINUTES_PER_GENOME * 60_000, "vcpus": VCPUS,
         "memory_mib": MEMORY_MIB, "gpus": 0, "compute_environment": "bactopia",
         "tags": {"genobatch:sample": f"SRX{i}"}}
        for i in range(GENOMES)
    ]  # fmt: skip
    return records, {"bactopia": spec}


def test_seed_001_cpu_hours_from_genomes_and_minutes() -> None:
    """70,000 genomes x 55 min x 4 vCPUs = 256,667 CPU hours: -0.77% from the published 258,670.

    Tolerance 2%: "around 55 minutes" is given to the minute (+-0.5 min is +-0.9%) and "close to
    70,000" to two figures (+-500 is +-0.7%); together +-1.6%. The gap is inside that. (With the
    67,000 genomes of the final run alone it would be -5%: the published hours include testing.)
    """
    records, _ = bactopia_records()
    cpu_hours = vcpu_hours(records)
    assert cpu_hours == pytest.approx(GENOMES * VCPUS * MINUTES_PER_GENOME / 60)
    assert abs(relative_gap(cpu_hours, PUBLISHED_CPU_HOURS)) < 0.02
    assert relative_gap(cpu_hours, PUBLISHED_CPU_HOURS) == pytest.approx(-0.0077, abs=0.0001)


def test_seed_001_ec2_from_cpu_hours_and_the_catalogs_m5_prices() -> None:
    """EC2: the catalog's m5 spot estimate gives $4,928, 35% under the published $7,552; on-demand $12,320.

    No tight tolerance can be claimed: the write-up does not say which spot prices it paid (2020's
    market prices), and the catalog's spot figure is an estimate (0.4 x on-demand), not an observed
    price. What is asserted: genobatch's figures from the inputs (worked by hand below), and that the
    published bill lies between the spot estimate and on-demand for the same CPU hours - it implies
    $0.0292 per vCPU-hour, 0.61 x m5's on-demand rate. The README lists the causes of the gap.
    """
    catalog = load_catalog()
    records, specs = bactopia_records("SPOT")
    spec = specs["bactopia"]
    assert (spec.instance_type, spec.purchase, spec.region) == ("m5.xlarge", "spot", REGION)
    assert spec.price_per_hour == catalog.price("m5.xlarge", REGION, "spot").value
    costs = attempt_costs(records, specs)
    assert {c.share for c in costs} == {1.0}  # a 4 vCPU / 16 GiB job takes a whole m5.xlarge
    spot = sum(c.cost_usd for c in costs)
    # 70,000 x 55/60 h x m5.xlarge spot $/h (catalog us-east-1: $0.192 x 0.4 = $0.0768) = $4,928.00
    assert spot == pytest.approx(GENOMES * MINUTES_PER_GENOME / 60 * spec.price_per_hour)

    records, specs = bactopia_records("EC2")
    on_demand = sum(c.cost_usd for c in attempt_costs(records, specs))
    assert specs["bactopia"].price_per_hour == catalog.price("m5.xlarge", REGION).value
    assert on_demand == pytest.approx(GENOMES * MINUTES_PER_GENOME / 60 * catalog.price("m5.xlarge", REGION).value)

    assert spot < PUBLISHED_EC2_USD < on_demand
    # The gap with the catalog's spot estimate, pinned so a change of price or formula is noticed.
    assert relative_gap(spot, PUBLISHED_EC2_USD) == pytest.approx(4_928 / 7_552 - 1, abs=0.001)  # -34.7%


def test_seed_001_transfer_from_volume_and_the_catalogs_egress_tiers() -> None:
    """Data transfer: 42 TB out to the internet at the catalog's tiered rates, $3,707: +3.9% over $3,566.

    Tolerance 5%: whether the write-up's "42 TB" is 42,000 or 43,008 GB is not said (2.4%), "42" is
    two figures (+-1.2%), and the 100 GB free each month is not modelled (-0.25%). The download is
    assumed to have happened in one billing month (the tiers restart each month).
    """
    catalog = load_catalog()
    rate = catalog.transfer_rate("internet_egress", REGION)
    usd = transfer_cost(TRANSFER_TB * GB_PER_TB, rate)
    # 10,240 GB x $0.09 + 32,768 GB x $0.085 = $921.60 + $2,785.28 = $3,706.88 (catalog tiers, us-east-1)
    assert usd == pytest.approx(sum(t.usd * q for t, q in zip(rate.tiers, (10_240, 32_768), strict=False)))
    assert abs(relative_gap(usd, PUBLISHED_TRANSFER_USD)) < 0.05
    decimal = transfer_cost(TRANSFER_TB * 1000, rate)  # 42 TB read as 42,000 GB: +1.6%
    assert abs(relative_gap(decimal, PUBLISHED_TRANSFER_USD)) < abs(relative_gap(usd, PUBLISHED_TRANSFER_USD))


def test_seed_001_s3_from_volume_and_days_stored() -> None:
    """S3: the write-up states how much was stored (84 TB), not for how long, so the line is bracketed.

    Stored for the 5 days of the run, growing evenly (42 TB on average): $163. Stored whole for one
    billing month (730 h): $1,944. The published $1,286 lies between - the results stayed for about
    two thirds of a month - and no tolerance tighter than that bracket can be claimed from the seed.
    """
    rate = load_catalog().storage_rate("s3_standard", REGION)
    during_run = storage_cost(STORAGE_TB * GB_PER_TB / 2, 5, rate)  # the run's 5 days, filling up evenly
    one_month = storage_cost(STORAGE_TB * GB_PER_TB, 730 / 24, rate)
    # 51,200 GB x $0.023 + 34,816 GB x $0.022 = $1,943.55 per month (catalog tiers, us-east-1)
    assert one_month == pytest.approx(51_200 * rate.tiers[0].usd + 34_816 * rate.tiers[1].usd)
    # 43,008 GB x $0.023 x 5 x 24 / 730 = $162.60
    assert during_run == pytest.approx(43_008 * rate.tiers[0].usd * 5 * 24 / 730)
    assert during_run < PUBLISHED_S3_USD < one_month


def test_seed_001_bill_from_inputs_in_the_write_ups_table_shape() -> None:
    """The reproduced lines in the write-up's table: $10,578 (S3 at one month), 14.7% under the published $12,408.

    The total inherits the EC2 line's gap (spot prices not stated) and the S3 line's (duration not
    stated); CloudWatch ($4) is not reproduced (the catalog has no CloudWatch rates).
    """
    catalog = load_catalog()
    records, specs = bactopia_records("SPOT")
    ec2 = sum(c.cost_usd for c in attempt_costs(records, specs))
    transfer = transfer_cost(TRANSFER_TB * GB_PER_TB, catalog.transfer_rate("internet_egress", REGION))
    s3 = storage_cost(STORAGE_TB * GB_PER_TB, 730 / 24, catalog.storage_rate("s3_standard", REGION))
    table = breakdown_table(
        [
            Charge("Elastic Compute Cloud (EC2)", vcpu_hours(records), "CPU hours", ec2),
            Charge("Data Transfer", TRANSFER_TB, "TB", transfer),
            Charge("Simple Storage Service (S3)", STORAGE_TB, "TB", s3),
        ],
        samples=GENOMES,
    )
    total = table[-1]
    assert total.charge == "Total" and total.cost_usd == pytest.approx(ec2 + transfer + s3)
    assert sum(row.percent for row in table[:-1]) == pytest.approx(100)
    assert total.per_sample_usd == pytest.approx((ec2 + transfer + s3) / GENOMES)
    assert relative_gap(total.cost_usd, PUBLISHED_TOTAL_USD) == pytest.approx(
        (4_928 + 3_706.88 + 1_943.55) / 12_408 - 1, abs=0.001
    )


# --- seed 004: DRAGEN on F1 vs F2 (AstraZeneca and AWS, re:Invent talk) -------------------------------

# The talk's instances: "F1 ... 16 vCPUs ... two chips" is f1.4xlarge; "F2.6X large has 24 VCPUs ... one".
F1_TYPE, F2_TYPE = "f1.4xlarge", "f2.6xlarge"
SPEED_UP = 0.62  # "up to 62% speed up"
HALF_THE_TIME = 0.5  # "We can do the same amount of work in half the time, so to speak"
PUBLISHED_COST_REDUCTION = 0.71  # "a 71% reduction in cost" - the figure checked, never an input
# One sample's DRAGEN run on F1: the talk's "35 minutes" for DRAGEN. The cost ratio does not depend on
# it beyond per-second rounding (under 0.1%); no overhead, as the talk compares run times.
F1_RUN_S = 35 * 60
# Consistent = within 2 percentage points: both published percentages are rounded to 1 point.
CONSISTENT_POINTS = 0.02

# Each reading of "62% speed up" as F2's run time / F1's, and how many samples one F1 instance runs at once.
READINGS_004 = {
    "62% less time": (1 - SPEED_UP, 1),
    "1.62x as fast": (1 / (1 + SPEED_UP), 1),
    "half the time": (HALF_THE_TIME, 1),
    "62% less time, F1 running two samples (one per chip)": (1 - SPEED_UP, 2),
    "1.62x as fast, F1 running two samples (one per chip)": (1 / (1 + SPEED_UP), 2),
}


def seed_004_regions() -> list[str]:
    """The catalog's regions with an on-demand price for both types."""
    catalog = load_catalog()
    return [r for r in catalog.regions() if r in catalog.regions(F1_TYPE) and r in catalog.regions(F2_TYPE)]


def seed_004_cost_reduction(reading: str, region: str) -> float:
    """1 - F2's cost per sample / F1's, with genobatch's workload cost (per-second billing) and catalog prices."""
    catalog = load_catalog()
    time_ratio, f1_samples = READINGS_004[reading]
    price_f1 = catalog.price(F1_TYPE, region).value
    price_f2 = catalog.price(F2_TYPE, region).value
    # One sample is one unit of work; an F1 running two at once does two units in one run time.
    f1 = workload_cost(F1_RUN_S, f1_samples, 1, price_f1, 0)
    f2 = workload_cost(F1_RUN_S * time_ratio, 1, 1, price_f2, 0)
    return 1 - f2 / f1


def test_seed_004_catalog_shapes_are_the_talks() -> None:
    catalog = load_catalog()
    f1, f2 = catalog.instance(F1_TYPE), catalog.instance(F2_TYPE)
    assert (f1.vcpus, f1.fpgas, f2.vcpus, f2.fpgas) == (16, 2, 24, 1)
    assert f2.vcpus / f2.fpgas == 3 * f1.vcpus / f1.fpgas  # "a 200% increase in terms of cores per chip"


def test_seed_004_which_reading_of_62_percent_gives_71_percent_cheaper() -> None:
    """At the catalog's on-demand prices (us-east-1: F2 costs 0.6 x F1 per hour) neither reading of "62%" gives 71%.

    "62% less time" gives 77.2% cheaper (+6.2 points), "1.62x as fast" 63.0% (-8.0 points); F1 running
    one sample per chip makes both further off. Only "half the time", the talk's own paraphrase, is
    consistent (70.0%, -1.0 point): 71% implies F2 takes 0.48 x F1's time at these prices.
    """
    regions = seed_004_regions()
    assert "us-east-1" in regions
    catalog = load_catalog()
    for region in regions:
        gaps = {r: seed_004_cost_reduction(r, region) - PUBLISHED_COST_REDUCTION for r in READINGS_004}
        consistent = sorted(r for r, gap in gaps.items() if abs(gap) <= CONSISTENT_POINTS)
        assert consistent == ["half the time"], (region, gaps)
        assert 0.05 < gaps["62% less time"] < 0.07, gaps
        assert -0.09 < gaps["1.62x as fast"] < -0.07, gaps
        assert gaps["62% less time, F1 running two samples (one per chip)"] < -0.15, gaps
        price_ratio = catalog.price(F2_TYPE, region).value / catalog.price(F1_TYPE, region).value
        implied_time_ratio = (1 - PUBLISHED_COST_REDUCTION) / price_ratio
        assert 0.47 < implied_time_ratio < 0.50, implied_time_ratio  # a 2.07x speed-up, 52% less time


def test_seed_004_regions_without_both_prices_are_listed_as_missing() -> None:
    """The comparison runs where the catalog prices both types; every other catalog region names why not."""
    catalog = load_catalog()
    compared = set(seed_004_regions())
    gaps = {(name, region) for name, region, _ in catalog.missing()}
    for region in set(catalog.document["regions"]) - compared:
        assert (F1_TYPE, region) in gaps or (F2_TYPE, region) in gaps, region

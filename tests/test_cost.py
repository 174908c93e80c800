"""Cost accounting: the price catalog, the billing formulas, aggregation, and the Pricing API updater.

Every expected figure is worked by hand in the test (prices from the built-in catalog: m5.xlarge is
4 vCPU / 16 GiB at $0.192/h on-demand in us-east-1). The seeds' published figures are reproduced from
their inputs in test_seed_reproductions.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from genobatch.cost import pricing_api
from genobatch.cost.accounting import (
    UNLABELLED,
    attempt_costs,
    cost_per_job,
    cost_per_queue,
    cost_per_sample,
    cost_per_tag,
    run_cost,
    sample_costs,
)
from genobatch.cost.billing import (
    BillingSpec,
    Usage,
    attributed_cost,
    billed_cost,
    billed_instance_seconds,
    billed_seconds,
    billing_spec_from_compute_environment,
    share,
    storage_cost,
    tiered_cost,
    transfer_cost,
)
from genobatch.cost.catalog import (
    Catalog,
    CatalogError,
    Tier,
    UnknownInstanceType,
    UnknownRegion,
    builtin_document,
    load_catalog,
)

pytestmark = pytest.mark.no_store  # uses no store: the PostgreSQL pass would only repeat it

M5_XLARGE = 0.192  # us-east-1 on-demand, from the catalog
GIB = 1024


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def m5_xlarge(price: float = M5_XLARGE) -> BillingSpec:
    return BillingSpec("m5.xlarge", price, vcpus=4, memory_mib=16 * GIB, gpus=0, region="us-east-1")


def compute_environment(instance_types: list[str] | None = None, kind: str = "EC2", **tags: str) -> dict[str, Any]:
    """A DescribeComputeEnvironments item, as much of it as billing reads."""
    resources: dict[str, Any] = {"type": kind, "minvCpus": 0, "maxvCpus": 16}
    if instance_types is not None:
        resources["instanceTypes"] = instance_types
    return {
        "computeEnvironmentName": "ce",
        "type": "MANAGED",
        "state": "ENABLED",
        "computeResources": resources,
        "tags": {key.replace("__", ":").replace("_", "-"): value for key, value in tags.items()},
    }


# --- the catalog ---------------------------------------------------------------------------------


def test_catalog_covers_the_genomics_types_with_dated_sourced_figures(catalog: Catalog) -> None:
    required = {
        "m5.large", "m6i.4xlarge", "m7i.8xlarge", "c5.large", "c6i.8xlarge", "r5.large", "r6i.8xlarge",
        "g4dn.xlarge", "g5.xlarge", "g5.48xlarge", "g6.xlarge", "p3.16xlarge", "p4d.24xlarge", "p5.48xlarge",
        "f1.2xlarge", "f1.16xlarge", "f2.6xlarge", "f2.48xlarge",
    }  # fmt: skip
    assert required <= set(catalog.instance_types())
    assert catalog.regions() == ["eu-central-1", "us-east-1", "us-west-2"]
    document = builtin_document()
    for name, entry in document["instance_types"].items():
        assert entry["spec_source"] and entry["spec_as_of"], name
        for region, figure in entry["on_demand"].items():
            assert figure["source"] and figure["as_of"] and figure["confidence"] in {"high", "medium", "low"}, (
                name,
                region,
            )
    # The reference's us-west-2 on-demand figures (benchmarking.md, 2024-11).
    for name, price in {"p5.48xlarge": 98.32, "p4d.24xlarge": 32.7726, "g5.48xlarge": 16.288, "g5.xlarge": 1.006,
                        "g4dn.xlarge": 0.526}.items():  # fmt: skip
        figure = catalog.price(name, "us-west-2")
        assert figure.value == price and figure.as_of == "2024-11" and "benchmarking.md" in figure.source


def test_instance_shapes(catalog: Catalog) -> None:
    g5 = catalog.instance("g5.12xlarge")
    assert (g5.vcpus, g5.memory_mib, g5.gpus, g5.gpu_model) == (48, 192 * GIB, 4, "NVIDIA A10G")
    f2 = catalog.instance("f2.6xlarge")
    assert (f2.vcpus, f2.fpgas, f2.category) == (24, 1, "fpga")
    assert catalog.instance("p5.48xlarge").gpus == 8


def test_unknown_instance_type_lists_close_matches(catalog: Catalog) -> None:
    with pytest.raises(UnknownInstanceType, match=r"did you mean g5\.xlarge"):
        catalog.instance("g5.xlarg")
    with pytest.raises(UnknownInstanceType, match=r"p4d\.24xlarge"):
        catalog.price("p4", "us-east-1")
    with pytest.raises(UnknownInstanceType, match="override"):
        catalog.instance("zz9.plural")


def test_unknown_region_lists_the_regions_priced(catalog: Catalog) -> None:
    with pytest.raises(
        UnknownRegion, match=r"p5\.48xlarge in 'eu-central-1' \(the catalog has: us-east-1, us-west-2\)"
    ):
        catalog.price("p5.48xlarge", "eu-central-1")
    with pytest.raises(UnknownRegion):
        catalog.storage_rate("s3_standard", "mars-north-1")
    with pytest.raises(ValueError, match="purchase"):
        catalog.price("m5.large", "us-east-1", "reserved")  # type: ignore[arg-type]


def test_spot_is_estimated_from_on_demand_unless_observed(catalog: Catalog, tmp_path: Path) -> None:
    on_demand = catalog.price("m5.xlarge", "us-east-1", "on-demand")
    spot = catalog.price("m5.xlarge", "us-east-1", "spot")
    assert on_demand.value == M5_XLARGE
    assert spot.value == pytest.approx(M5_XLARGE * 0.4) and spot.confidence == "low" and "estimate" in spot.source
    override = tmp_path / "prices.yaml"
    override.write_text(
        "instance_types:\n"
        "  m5.xlarge:\n"
        "    spot:\n"
        "      us-east-1: {usd_per_hour: 0.0712, source: test, as_of: 2024-12-01}\n"
    )
    observed = load_catalog(override).price("m5.xlarge", "us-east-1", "spot")
    assert (observed.value, observed.source) == (0.0712, "test")


def test_override_file_adds_and_replaces_entries(tmp_path: Path) -> None:
    override = tmp_path / "prices.json"
    override.write_text(
        json.dumps(
            {
                "instance_types": {
                    "g5.xlarge": {
                        "on_demand": {"eu-central-1": {"usd_per_hour": 1.3, "source": "me", "as_of": "2025-01"}}
                    },
                    "onprem.node": {
                        "category": "general-purpose",
                        "vcpus": 64,
                        "memory_gib": 512,
                        "on_demand": {"us-east-1": {"usd_per_hour": 2.5, "source": "finance", "as_of": "2025-01"}},
                    },
                }
            }
        )
    )
    catalog = load_catalog(override)
    assert catalog.price("g5.xlarge", "eu-central-1").value == 1.3
    assert catalog.price("g5.xlarge", "us-east-1").value == 1.006  # the rest of the entry is kept
    assert catalog.instance("onprem.node").vcpus == 64
    assert catalog.price("onprem.node", "us-east-1").source == "finance"


def test_figures_without_source_or_date_are_refused(tmp_path: Path) -> None:
    override = tmp_path / "bad.json"
    override.write_text(json.dumps({"instance_types": {"m5.large": {"on_demand": {"us-east-1": {"usd_per_hour": 1}}}}}))
    with pytest.raises(CatalogError, match=r"m5\.large\.on_demand\.us-east-1: missing source, as_of"):
        load_catalog(override)
    override.write_text(json.dumps({"instance_types": {"new.type": {"on_demand": {}}}}))
    with pytest.raises(CatalogError, match="vcpus"):
        load_catalog(override)


def test_storage_and_transfer_rates(catalog: Catalog) -> None:
    assert catalog.storage_rate("ebs_gp3", "us-east-1").first_tier == 0.08
    s3 = catalog.storage_rate("s3_standard", "us-east-1")
    assert s3.first_tier == 0.023 and s3.unit == "USD/GB-month" and s3.as_of
    egress = catalog.transfer_rate("internet_egress", "us-east-1")
    assert [t.usd for t in egress.tiers] == [0.09, 0.085, 0.07, 0.05]
    assert catalog.transfer_rate("inter_region", "eu-central-1").first_tier == 0.02
    with pytest.raises(CatalogError, match="did you mean internet_egress"):
        catalog.transfer_rate("internet_egres", "us-east-1")


# --- billing formulas ---------------------------------------------------------------------------


def test_sixty_second_minimum() -> None:
    lifetimes = billed_instance_seconds([Usage(0, 10, 2, 4 * GIB)], m5_xlarge())
    assert [(life.held_s, life.billed_s) for life in lifetimes] == [(10, 60)]
    assert billed_cost([Usage(0, 10, 2, 4 * GIB)], m5_xlarge()) == pytest.approx(60 * M5_XLARGE / 3600)  # $0.0032
    # The job itself is attributed only what it ran: half the instance for 10 s.
    assert attributed_cost(Usage(0, 10, 2, 4 * GIB), m5_xlarge()) == pytest.approx(0.5 * M5_XLARGE * 10 / 3600)


def test_per_second_beyond_the_minimum() -> None:
    assert billed_seconds(61.2) == 62  # whole seconds, rounded up
    assert billed_seconds(90) == 90
    assert billed_seconds(0) == 60
    assert billed_cost([Usage(0, 90, 4, 16 * GIB)], m5_xlarge()) == pytest.approx(90 * M5_XLARGE / 3600)  # $0.0048


def test_an_attempt_that_stopped_when_it_started_is_billed_the_minimum() -> None:
    # Remote engines report milliseconds: a trivial job's startedAt can equal its stoppedAt.
    jobs = [Usage(5, 5, 1, 1 * GIB, key="zero"), Usage(5, 7, 1, 1 * GIB, key="next")]
    lifetimes = billed_instance_seconds(jobs, m5_xlarge())
    assert [(life.attempts, life.billed_s) for life in lifetimes] == [(("zero", "next"), 60)]


def test_shared_instance_attribution() -> None:
    """Two 2-vCPU jobs on one 4-vCPU instance for an hour: each pays half, together the whole."""
    jobs = [Usage(0, 3600, 2, 4 * GIB, key="a"), Usage(0, 3600, 2, 4 * GIB, key="b")]
    assert [attributed_cost(job, m5_xlarge()) for job in jobs] == pytest.approx([0.096, 0.096])
    lifetimes = billed_instance_seconds(jobs, m5_xlarge())
    assert len(lifetimes) == 1 and lifetimes[0].attempts == ("a", "b")
    assert billed_cost(jobs, m5_xlarge()) == pytest.approx(0.192)


def test_share_is_the_dominant_resource() -> None:
    g5_12xlarge = BillingSpec("g5.12xlarge", 5.672, vcpus=48, memory_mib=192 * GIB, gpus=4)
    assert share(1, 4 * GIB, 1, g5_12xlarge) == 0.25  # 1 GPU of 4 outweighs 1 vCPU of 48
    assert share(1, 96 * GIB, 1, g5_12xlarge) == 0.5  # memory dominates
    assert share(2, 4 * GIB, 0, m5_xlarge()) == 0.5
    assert share(2, 16 * GIB, 0, m5_xlarge()) == 1.0
    assert share(8, 4 * GIB, 0, m5_xlarge()) == 1.0  # capped
    assert share(1, 1 * GIB, 1, m5_xlarge()) == 0.25  # no GPU term on a GPU-less instance


def test_billed_versus_attributed_with_idle_time() -> None:
    """A 2-vCPU job for an hour and one for half an hour share an instance held the whole hour."""
    jobs = [Usage(0, 3600, 2, 4 * GIB), Usage(0, 1800, 2, 4 * GIB)]
    attributed = sum(attributed_cost(job, m5_xlarge()) for job in jobs)
    assert attributed == pytest.approx(0.096 + 0.048)
    assert billed_cost(jobs, m5_xlarge()) == pytest.approx(0.192)  # 0.048 of it idle


def test_instances_are_launched_and_released_as_needed() -> None:
    spec = m5_xlarge()
    # Three whole-instance jobs, two at once then one later: two instances, the first reused.
    jobs = [Usage(0, 100, 4, 8 * GIB), Usage(0, 200, 4, 8 * GIB), Usage(150, 400, 4, 8 * GIB)]
    lifetimes = billed_instance_seconds(jobs, spec, idle_grace_s=60)
    assert [(life.launch_s, life.release_s) for life in lifetimes] == [(0, 460), (0, 260)]
    # Without grace the first instance goes at 100 and a third is launched at 150.
    lifetimes = billed_instance_seconds(jobs, spec)
    assert [(life.launch_s, life.release_s, life.billed_s) for life in lifetimes] == [
        (0, 100, 100),
        (0, 200, 200),
        (150, 400, 250),
    ]
    # Back to back: capacity freed at t is taken at t, one instance, one minimum.
    assert [life.billed_s for life in billed_instance_seconds([Usage(0, 10, 4, GIB), Usage(10, 20, 4, GIB)], spec)] == [
        60
    ]


def test_idle_grace_boundary() -> None:
    jobs = [Usage(0, 100, 4, GIB), Usage(400, 500, 4, GIB)]
    assert [life.billed_s for life in billed_instance_seconds(jobs, m5_xlarge())] == [100, 100]
    # Idle at 100 with 300 s grace: still held at 400, so the second job reuses it; released at 800.
    assert [(life.launch_s, life.release_s) for life in billed_instance_seconds(jobs, m5_xlarge(), 300)] == [(0, 800)]
    assert [(life.launch_s, life.release_s) for life in billed_instance_seconds(jobs, m5_xlarge(), 299)] == [
        (0, 399),
        (400, 799),
    ]
    with pytest.raises(ValueError):
        billed_instance_seconds(jobs, m5_xlarge(), -1)


def test_packing_respects_memory_and_gpus() -> None:
    spec = m5_xlarge()
    # 1 vCPU each but 12 GiB each: only one fits in 16 GiB.
    assert len(billed_instance_seconds([Usage(0, 60, 1, 12 * GIB), Usage(0, 60, 1, 12 * GIB)], spec)) == 2
    g5_12xlarge = BillingSpec("g5.12xlarge", 5.672, vcpus=48, memory_mib=192 * GIB, gpus=4)
    five = [Usage(0, 60, 1, GIB, gpus=1) for _ in range(5)]
    assert [len(life.attempts) for life in billed_instance_seconds(five, g5_12xlarge)] == [4, 1]
    # Bigger than an instance: an instance of its own.
    assert len(billed_instance_seconds([Usage(0, 60, 1, GIB), Usage(0, 60, 8, GIB)], spec)) == 2


def test_packing_scales_to_a_large_run() -> None:
    jobs = [Usage(i % 500, i % 500 + 3300, 4, 16 * GIB, key=str(i)) for i in range(20_000)]
    lifetimes = billed_instance_seconds(jobs, m5_xlarge())
    assert len(lifetimes) == 20_000  # each fills its instance; none ends before the last starts


def test_storage_and_transfer_costs(catalog: Catalog) -> None:
    assert storage_cost(100, 30, 0.023) == pytest.approx(100 * 0.023 * 720 / 730)
    assert storage_cost(1000, 365, 0.023) == pytest.approx(1000 * 0.023 * 12)  # 365 days = 8760 h = 12 × 730 h
    # S3's volume tiers: 60 TB for a month is 50 TB at 0.023 and 10 TB at 0.022.
    s3 = catalog.storage_rate("s3_standard", "us-east-1")
    assert storage_cost(60 * 1024, 730 / 24, s3) == pytest.approx(51200 * 0.023 + 10240 * 0.022)
    assert transfer_cost(10, 0.09) == pytest.approx(0.9)
    # 42 TB out to the internet in one month, at the tiers: 10 TB at 0.09 then 32 TB at 0.085.
    egress = catalog.transfer_rate("internet_egress", "us-east-1")
    assert transfer_cost(42 * 1024, egress) == pytest.approx(10240 * 0.09 + 32768 * 0.085)  # $3,706.88
    assert tiered_cost(0, egress.tiers) == 0
    with pytest.raises(ValueError, match="unbounded"):
        tiered_cost(20, [Tier(10, 1.0)])


# --- billing specs from compute environments ----------------------------------------------------


def test_spec_from_named_instance_type(catalog: Catalog) -> None:
    spec = billing_spec_from_compute_environment(compute_environment(["m5.xlarge", "m5.2xlarge"]), catalog, "us-east-1")
    assert (spec.instance_type, spec.price_per_hour, spec.vcpus, spec.memory_mib, spec.purchase) == (
        "m5.xlarge",
        M5_XLARGE,
        4,
        16 * GIB,
        "on-demand",
    )
    assert "On-Demand pricing page" in spec.price_source and spec.price_as_of == "2024-11"


def test_spot_versus_on_demand_price_selection(catalog: Catalog) -> None:
    for kind in ("SPOT", "FARGATE_SPOT"):
        spec = billing_spec_from_compute_environment(compute_environment(["m5.xlarge"], kind), catalog, "us-east-1")
        assert spec.purchase == "spot" and spec.price_per_hour == pytest.approx(M5_XLARGE * 0.4)
    for kind in ("EC2", "FARGATE"):
        spec = billing_spec_from_compute_environment(compute_environment(["m5.xlarge"], kind), catalog, "us-east-1")
        assert spec.purchase == "on-demand" and spec.price_per_hour == M5_XLARGE


def test_region_tag_picks_the_pricing_region(catalog: Catalog) -> None:
    document = compute_environment(["m5.xlarge"], genobatch__region="eu-central-1")
    spec = billing_spec_from_compute_environment(document, catalog, "us-east-1")
    assert (spec.region, spec.price_per_hour) == ("eu-central-1", 0.23)
    assert billing_spec_from_compute_environment(compute_environment(["m5.xlarge"]), catalog, "us-west-2").region == (
        "us-west-2"
    )


def test_explicit_price_per_hour_tag_overrides_the_catalog(catalog: Catalog) -> None:
    document = compute_environment(["g5.xlarge"], "SPOT", genobatch__price_per_hour="0.35")
    spec = billing_spec_from_compute_environment(document, catalog, "us-east-1")
    assert (spec.instance_type, spec.price_per_hour, spec.gpus, spec.price_source) == (
        "g5.xlarge",
        0.35,
        1,
        "tag genobatch:price-per-hour",
    )
    # No named type: the instance is the host itself, at the tagged price.
    document = compute_environment(["optimal"], genobatch__price_per_hour="$1.25")
    spec = billing_spec_from_compute_environment(document, catalog, "us-east-1", 12, 64 * GIB, 2)
    assert (spec.instance_type, spec.price_per_hour, spec.vcpus, spec.memory_mib, spec.gpus) == (
        None,
        1.25,
        12,
        64 * GIB,
        2,
    )
    # A family name priced by tag: its smallest size that holds the host, at the tagged price.
    document = compute_environment(["c6i"], genobatch__price_per_hour="0.1")
    spec = billing_spec_from_compute_environment(document, catalog, "us-east-1", 3, 4 * GIB)
    assert (spec.instance_type, spec.price_per_hour) == ("c6i.xlarge", 0.1)
    # An unlisted type is fine when priced by tag; not without.
    document = compute_environment(["lab-node-7"], genobatch__price_per_hour="0.8")
    assert billing_spec_from_compute_environment(document, catalog, "us-east-1", 32, 128 * GIB).vcpus == 32
    with pytest.raises(UnknownInstanceType):
        billing_spec_from_compute_environment(compute_environment(["lab-node-7"]), catalog, "us-east-1")
    with pytest.raises(ValueError, match="price-per-hour"):
        bad = compute_environment(["m5.xlarge"], genobatch__price_per_hour="cheap")
        billing_spec_from_compute_environment(bad, catalog, "us-east-1")


def test_local_host_default_equivalent(catalog: Catalog) -> None:
    # 6 vCPUs / 16000 MiB: the smallest m6i holding it is the 2xlarge (8 vCPU, 32 GiB).
    for types in (None, ["optimal"], []):
        spec = billing_spec_from_compute_environment(compute_environment(types), catalog, "us-east-1", 6, 16000)
        assert (spec.instance_type, spec.price_per_hour) == ("m6i.2xlarge", 0.384)
    # maxvCpus stands in for the host's vCPUs: 16 -> m6i.4xlarge.
    assert billing_spec_from_compute_environment(compute_environment(), catalog, "us-east-1").instance_type == (
        "m6i.4xlarge"
    )
    # Bigger than the largest m6i (32 vCPU, $1.536/h): 64 vCPUs at its per-vCPU rate.
    spec = billing_spec_from_compute_environment(compute_environment(), catalog, "us-east-1", 64, 256 * GIB)
    assert (spec.instance_type, spec.vcpus, spec.price_per_hour) == (None, 64, pytest.approx(3.072))
    # A family name: its smallest size that holds the host.
    spec = billing_spec_from_compute_environment(compute_environment(["c5"]), catalog, "us-east-1", 3, 4 * GIB)
    assert spec.instance_type == "c5.xlarge"


# --- aggregation --------------------------------------------------------------------------------


def record(job_id: str, attempt: int, start_s: float, stop_s: float | None, vcpus: int = 2, **extra: Any) -> dict:
    return {
        "job_id": job_id,
        "attempt": attempt,
        "start_ms": int(start_s * 1000),
        "stop_ms": None if stop_s is None else int(stop_s * 1000),
        "vcpus": vcpus,
        "memory_mib": 4 * GIB,
        "gpus": 0,
        "compute_environment": "ce",
        "queue": extra.pop("queue", "q"),
        "tags": extra.pop("tags", {}),
        **extra,
    }


def test_costs_per_job_sample_tag_queue_and_run() -> None:
    specs = {"ce": m5_xlarge()}
    records = [
        # job a failed once and was retried: both attempts cost.
        record("a", 1, 0, 1800, tags={"genobatch:sample": "S1", "project": "p1"}),
        record("a", 2, 1800, 3600, tags={"genobatch:sample": "S1", "project": "p1"}),
        record("b", 1, 0, 3600, queue="fast", sample="S2", tags={"project": "p1"}),
        record("c", 1, 0, None),  # still running: left out without now_ms
    ]
    costs = attempt_costs(records, specs)
    assert cost_per_job(costs) == pytest.approx({"a": 0.096, "b": 0.096})
    assert cost_per_sample(costs) == pytest.approx({"S1": 0.096, "S2": 0.096})
    assert cost_per_tag(costs, "project") == pytest.approx({"p1": 0.192})
    assert cost_per_tag(costs, "missing") == pytest.approx({UNLABELLED: 0.192})
    assert cost_per_queue(costs) == pytest.approx({"q": 0.096, "fast": 0.096})
    run = run_cost(records, specs)
    assert (run.attributed_usd, run.billed_usd, run.vcpu_hours) == pytest.approx((0.192, 0.192, 4.0))
    assert run.unallocated_usd == pytest.approx(0)
    # Costed up to now_ms (1 h), the running job c needs a second instance: a and b fill the first.
    run = run_cost(records, specs, now_ms=3_600_000)
    assert len(run.environments["ce"].instances) == 2
    assert run.billed_usd == pytest.approx(0.384) and run.attributed_usd == pytest.approx(0.288)
    with pytest.raises(LookupError, match="no billing spec for compute environment 'ce'"):
        attempt_costs(records, {})


def test_trace_field_names_are_read() -> None:
    """Records shaped like genobatch.trace's (Nextflow's names) are accepted as they are."""
    trace = {"task_id": "j1", "attempt": 1, "start": 0, "complete": 1_800_000, "cpus": 4, "memory": 16 * GIB,
             "gpus": 0, "queue": "q", "compute_environment": "ce", "sample": "S9", "tags": {}}  # fmt: skip
    (cost,) = attempt_costs([trace], {"ce": m5_xlarge()})
    assert (cost.job_id, cost.sample, cost.share, cost.cost_usd) == ("j1", "S9", 1.0, pytest.approx(0.096))


def test_sample_rows_and_breakdown_table() -> None:
    costs = attempt_costs(
        [record("a", 1, 0, 3600, sample="S1"), record("b", 1, 0, 1800, sample="S2")], {"ce": m5_xlarge()}
    )
    rows = sample_costs(costs, storage_usd={"S1": 0.02, "S3": 0.01}, transfer_usd={"S2": 0.05})
    assert [(r.sample, r.compute_usd, r.storage_usd, r.transfer_usd) for r in rows] == [
        ("S1", pytest.approx(0.096), 0.02, 0.0),
        ("S2", pytest.approx(0.048), 0.0, 0.05),
        ("S3", 0.0, 0.01, 0.0),
    ]
    assert rows[0].total_usd == pytest.approx(0.116)


# --- the Pricing API updater --------------------------------------------------------------------


def price_list_item(instance_type: str, region: str, usd: str, **attributes: str) -> str:
    """A GetProducts PriceList item in the documented shape (one JSON string per product)."""
    sku = "ABCDEFGH12345678"
    return json.dumps(
        {
            "product": {
                "productFamily": "Compute Instance",
                "attributes": {
                    "instanceType": instance_type,
                    "regionCode": region,
                    "vcpu": "4",
                    "memory": "16 GiB",
                    "gpu": "1",
                    "instanceFamily": "GPU instance",
                    "operatingSystem": "Linux",
                    "tenancy": "Shared",
                    "preInstalledSw": "NA",
                    "capacitystatus": "Used",
                    "servicecode": "AmazonEC2",
                    **attributes,
                },
                "sku": sku,
            },
            "serviceCode": "AmazonEC2",
            "terms": {
                "OnDemand": {
                    f"{sku}.JRTCKXETXF": {
                        "priceDimensions": {
                            f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
                                "unit": "Hrs",
                                "endRange": "Inf",
                                "description": f"${usd} per On Demand Linux {instance_type} Instance Hour",
                                "appliesTo": [],
                                "rateCode": f"{sku}.JRTCKXETXF.6YS6EN2CT7",
                                "beginRange": "0",
                                "pricePerUnit": {"USD": usd},
                            }
                        },
                        "sku": sku,
                        "effectiveDate": "2024-11-01T00:00:00Z",
                        "offerTermCode": "JRTCKXETXF",
                        "termAttributes": {},
                    }
                }
            },
            "version": "20241120194531",
            "publicationDate": "2024-11-20T19:45:31Z",
        }
    )


def test_parse_price_list() -> None:
    product = pricing_api.parse_price_list([price_list_item("g5.xlarge", "us-west-2", "1.0060000000")])
    assert product is not None
    assert (product.instance_type, product.region, product.usd_per_hour, product.as_of) == (
        "g5.xlarge",
        "us-west-2",
        1.006,
        "2024-11-20",
    )
    assert (product.vcpus, product.memory_gib, product.gpus, product.category) == (4, 16.0, 1, "gpu")
    # Zero-priced placeholders and capacity blocks are not the on-demand price.
    items = [
        price_list_item("p5.48xlarge", "us-east-1", "0.0000000000"),
        price_list_item("p5.48xlarge", "us-east-1", "31.4640000000", marketoption="CapacityBlock"),
        price_list_item("p5.48xlarge", "us-east-1", "98.3200000000", marketoption="OnDemand"),
    ]
    assert pricing_api.parse_price_list(items).usd_per_hour == 98.32  # type: ignore[union-attr]
    assert pricing_api.parse_price_list([]) is None


def test_product_filters() -> None:
    filters = {f["Field"]: f["Value"] for f in pricing_api.product_filters("g5.xlarge", "us-west-2")}
    assert filters == {
        "instanceType": "g5.xlarge",
        "regionCode": "us-west-2",
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
    }


def test_summarize_spot_history() -> None:
    history = [
        {"AvailabilityZone": "us-west-2a", "InstanceType": "g5.xlarge", "ProductDescription": "Linux/UNIX",
         "SpotPrice": "0.40", "Timestamp": "2024-11-20T10:00:00Z"},
        {"AvailabilityZone": "us-west-2a", "InstanceType": "g5.xlarge", "ProductDescription": "Linux/UNIX",
         "SpotPrice": "0.30", "Timestamp": "2024-11-20T12:00:00Z"},
        {"AvailabilityZone": "us-west-2b", "InstanceType": "g5.xlarge", "ProductDescription": "Linux/UNIX",
         "SpotPrice": "0.50", "Timestamp": "2024-11-19T00:00:00Z"},
        {"AvailabilityZone": "us-west-2c", "InstanceType": "g5.xlarge", "ProductDescription": "Windows",
         "SpotPrice": "0.90", "Timestamp": "2024-11-20T00:00:00Z"},
    ]  # fmt: skip
    summary = pricing_api.summarize_spot_history(history, "g5.xlarge", "us-west-2", "2024-11-21")
    assert summary is not None
    assert (summary.usd_per_hour, summary.low, summary.high, summary.zones) == (0.40, 0.30, 0.50, 2)


class StubbedPricingSession:
    """A boto3 session whose Pricing client is stubbed (moto has no Pricing API); EC2 goes to moto."""

    def __init__(self, session: boto3.Session, pricing: Any) -> None:
        self._session, self._pricing = session, pricing

    def get_credentials(self) -> Any:
        return self._session.get_credentials()

    def client(self, name: str, region_name: str | None = None) -> Any:
        return self._pricing if name == "pricing" else self._session.client(name, region_name=region_name)


@mock_aws
def test_update_catalog_writes_sourced_dated_figures(tmp_path: Path) -> None:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-west-2")
    pricing = session.client("pricing", region_name="us-east-1")
    stubber = Stubber(pricing)
    for instance_type, usd in (("g5.xlarge", "1.0060000000"), ("x9z.mega", "7.0000000000")):
        stubber.add_response(
            "get_products",
            {"FormatVersion": "aws_v1", "PriceList": [price_list_item(instance_type, "us-west-2", usd)]},
            {"ServiceCode": "AmazonEC2", "Filters": pricing_api.product_filters(instance_type, "us-west-2")},
        )
    path = tmp_path / "prices-override.json"
    with stubber:
        result = pricing_api.update_catalog(
            path,
            ["us-west-2"],
            ["g5.xlarge", "x9z.mega"],
            StubbedPricingSession(session, pricing),
            now=datetime(2025, 1, 15, tzinfo=UTC),
        )
    stubber.assert_no_pending_responses()
    assert "g5.xlarge on-demand us-west-2" in result.updated and "g5.xlarge spot us-west-2" in result.updated
    assert "x9z.mega spot us-west-2" in result.missing  # moto has no spot history for an unknown type
    catalog = load_catalog(path)
    on_demand = catalog.price("g5.xlarge", "us-west-2")
    assert (on_demand.value, on_demand.source, on_demand.as_of) == (1.006, "AWS Pricing API", "2024-11-20")
    spot = catalog.price("g5.xlarge", "us-west-2", "spot")
    assert (spot.value, spot.source, spot.as_of) == (0.00001, "AWS EC2 DescribeSpotPriceHistory", "2025-01-15")
    assert catalog.instance("x9z.mega").vcpus == 4  # a new type gets its shape from the Pricing API
    assert catalog.price("g5.xlarge", "us-east-1").value == 1.006  # the built-in figures are kept


def test_update_catalog_without_credentials_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    path = tmp_path / "override.json"
    with pytest.raises(pricing_api.PricingUnavailable, match="no AWS credentials"):
        pricing_api.update_catalog(path, ["us-east-1"], ["m5.large"], boto3.Session(region_name="us-east-1"))
    assert not path.exists()


def test_update_catalog_without_network_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_PRICING", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    with pytest.raises(pricing_api.PricingUnavailable, match="cannot be reached"):
        pricing_api.update_catalog(tmp_path / "o.json", ["us-east-1"], ["m5.large"], session, spot=False)

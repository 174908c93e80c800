"""Cost accounting: a dated EC2 price catalog, billing formulas, and per job/sample/queue/run costs.

``catalog`` (prices and their provenance), ``billing`` (the formulas: pure), ``accounting``
(aggregation over trace records: pure), ``pricing_api`` (refreshing prices from AWS's Pricing API),
``offer_file`` (refreshing on-demand prices from AWS's public offer files, no credentials).
"""

from genobatch.cost.accounting import (
    AttemptCost,
    BreakdownRow,
    Charge,
    RunCost,
    SampleCost,
    attempt_costs,
    breakdown_table,
    cost_per_job,
    cost_per_queue,
    cost_per_sample,
    cost_per_tag,
    run_cost,
    sample_costs,
    vcpu_hours,
)
from genobatch.cost.billing import (
    BillingSpec,
    InstanceLifetime,
    Usage,
    attributed_cost,
    billed_cost,
    billed_instance_seconds,
    billed_seconds,
    billing_spec_from_compute_environment,
    share,
    storage_cost,
    transfer_cost,
)
from genobatch.cost.catalog import Catalog, CatalogError, Figure, InstanceType, Rate, UnknownInstanceType, load_catalog

__all__ = [
    "AttemptCost",
    "BillingSpec",
    "BreakdownRow",
    "Catalog",
    "CatalogError",
    "Charge",
    "Figure",
    "InstanceLifetime",
    "InstanceType",
    "Rate",
    "RunCost",
    "SampleCost",
    "UnknownInstanceType",
    "Usage",
    "attempt_costs",
    "attributed_cost",
    "billed_cost",
    "billed_instance_seconds",
    "billed_seconds",
    "billing_spec_from_compute_environment",
    "breakdown_table",
    "cost_per_job",
    "cost_per_queue",
    "cost_per_sample",
    "cost_per_tag",
    "load_catalog",
    "run_cost",
    "sample_costs",
    "share",
    "storage_cost",
    "transfer_cost",
    "vcpu_hours",
]

"""The scheduler's view of a compute environment: a vCPU budget drawn from a pool."""

from __future__ import annotations

from dataclasses import dataclass

from genobatch.core.job import Resources
from genobatch.core.pool import Pool


@dataclass(slots=True)
class ComputeEnvironment:
    """``maxvCpus`` caps what this environment runs at once; the pool supplies the devices."""

    name: str
    pool: Pool
    max_vcpus: int
    enabled: bool = True
    used_vcpus: int = 0
    # False while its backend cannot be reached: nothing new is placed here (queued jobs wait, or
    # go to the queue's next compute environment), as AWS places nothing on an INVALID one.
    reachable: bool = True

    def could_ever_fit(self, need: Resources) -> bool:
        return need.vcpus <= self.max_vcpus and self.pool.could_ever_fit(need)

    def fits_now(self, need: Resources) -> bool:
        return self.has_room() and self.used_vcpus + need.vcpus <= self.max_vcpus and self.pool.fits_now(need)

    def has_room(self) -> bool:
        """Whether even the smallest job (1 vCPU) could start here now."""
        return self.enabled and self.reachable and self.used_vcpus < self.max_vcpus and self.pool.has_free_vcpu()

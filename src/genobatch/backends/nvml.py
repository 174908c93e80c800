"""GPU discovery through NVML, for the local backend's inventory.

``pynvml`` (shipped by the ``nvidia-ml-py`` package, the ``gpu`` extra) is imported lazily so that
hosts without NVIDIA drivers, or without the package, simply report no GPUs.
"""

from __future__ import annotations

import contextlib
import logging

log = logging.getLogger(__name__)


def discover_gpus() -> tuple[int, ...]:
    """Return the NVML indices of this host's GPUs; empty when NVML is absent or fails.

    The indices are NVML's (PCI bus order); the local backend sets ``CUDA_DEVICE_ORDER=PCI_BUS_ID``
    for GPU jobs so that CUDA numbers the devices the same way.
    """
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return ()
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # any NVML error (no driver, no device) means "no GPUs here"
        log.debug("NVML unavailable: %s", exc)
        return ()
    try:
        return tuple(range(int(pynvml.nvmlDeviceGetCount())))
    except Exception as exc:
        log.warning("NVML device count failed: %s", exc)
        return ()
    finally:
        # Shutting down a half-initialised NVML must not mask the result.
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()

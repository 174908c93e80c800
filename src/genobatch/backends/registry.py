"""Which backend runs a compute environment's jobs: its ``genobatch:backend`` tag.

Tags are the wire contract, so boto3, the AWS CLI and ``genobatch create compute-environment``
choose a backend without any new API member:

* ``genobatch:backend`` = ``local`` (the default) | ``slurm`` | ``aws-batch``
* Slurm: ``genobatch:slurm-partition`` (required), ``genobatch:slurm-account``,
  ``genobatch:slurm-qos``, ``genobatch:slurm-options`` (extra ``sbatch`` options).
* AWS Batch: ``genobatch:aws-batch-job-queue`` (required), ``genobatch:aws-batch-region``,
  ``genobatch:aws-batch-endpoint``, ``genobatch:aws-profile``.

:func:`check_tags` validates them without any network call (the API refuses bad ones with a
message naming the tag); :class:`BackendRegistry` keeps one backend per compute environment for
the engine: all local environments share the host's :class:`~genobatch.backends.local.LocalBackend`,
each remote one gets its own :class:`~genobatch.backends.remote.RemoteBackend`.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Mapping

from genobatch.backends.base import Backend, EventSink
from genobatch.backends.remote import RemoteBackend, RemoteEngine

log = logging.getLogger("genobatch.backends.registry")

BACKEND_TAG = "genobatch:backend"
LOCAL = "local"
#: Engine modules, imported when first used (a server without Slurm never imports its client).
ENGINE_FACTORIES = {
    "slurm": "genobatch.backends.slurm:engine_from_tags",
    "aws-batch": "genobatch.backends.aws_batch:engine_from_tags",
}
KINDS = (LOCAL, *ENGINE_FACTORIES)
_BACKEND_TAG_PREFIXES = (BACKEND_TAG, "genobatch:slurm-", "genobatch:aws-batch-", "genobatch:aws-profile")

EngineFactory = Callable[[str, Mapping[str, str]], RemoteEngine]


def backend_kind(tags: Mapping[str, str] | None) -> str:
    """The backend a compute environment's tags name; ``ValueError`` naming the tag if unknown."""
    kind = (tags or {}).get(BACKEND_TAG, LOCAL)
    if kind not in KINDS:
        raise ValueError(f"tag {BACKEND_TAG}: unknown backend {kind!r}; expected one of {', '.join(KINDS)}")
    return kind


def is_backend_tag(key: str) -> bool:
    """Whether a tag key chooses or configures a compute environment's backend."""
    return key.startswith(_BACKEND_TAG_PREFIXES)


def _factory(kind: str) -> EngineFactory:
    module, _, name = ENGINE_FACTORIES[kind].partition(":")
    return getattr(importlib.import_module(module), name)


def check_tags(compute_environment: str, tags: Mapping[str, str] | None) -> str:
    """Validate a compute environment's backend tags without touching the network; return the kind.

    Raises ``ValueError`` with a message naming the tag and what is wrong with it.
    """
    kind = backend_kind(tags)
    if kind != LOCAL:
        _factory(kind)(compute_environment, dict(tags or {})).close()
    return kind


class BackendRegistry:
    """One backend per compute environment; the engine asks it which one runs an attempt."""

    def __init__(self, local: Backend, factories: Mapping[str, EngineFactory] | None = None) -> None:
        self.local = local
        self._factories = dict(factories or {})
        self._remote: dict[str, tuple[dict, RemoteBackend]] = {}
        self._broken: dict[str, str] = {}  # remote environments without a backend: why
        self._sink: EventSink | None = None
        self._lock = threading.Lock()  # configure() runs on the engine thread; lookups may not

    def bind(self, sink: EventSink) -> None:
        """Bind the local backend (and every remote one created later) to the engine's inbox."""
        self._sink = sink
        self.local.bind(sink)

    def configure(self, compute_environment: str, tags: Mapping[str, str] | None) -> None:
        """Create, replace or drop the remote backend of a compute environment after its tags changed.

        A configuration the engine module refuses (it was checked when the environment was
        created, so only a changed module can do this) leaves the environment without a backend;
        its attempts then fail to start, saying why.
        """
        tags = dict(tags or {})
        with self._lock:
            current = self._remote.get(compute_environment)
            if current is not None and current[0] == tags:
                return
        self.remove(compute_environment)
        try:
            kind = backend_kind(tags)
            if kind == LOCAL:
                return
            factory = self._factories.get(kind) or _factory(kind)
            backend = RemoteBackend(factory(compute_environment, tags), compute_environment)
        except Exception as exc:  # noqa: BLE001 - reported on every start instead of running elsewhere
            log.exception("compute environment %s has no backend", compute_environment)
            with self._lock:
                self._broken[compute_environment] = f"no backend for compute environment {compute_environment}: {exc}"
            return
        assert self._sink is not None, "bind() first"
        backend.bind(self._sink)
        with self._lock:
            self._remote[compute_environment] = (tags, backend)

    def remove(self, compute_environment: str) -> None:
        """Drop a compute environment's remote backend (its remote jobs are left as they are)."""
        with self._lock:
            entry = self._remote.pop(compute_environment, None)
            self._broken.pop(compute_environment, None)
        if entry is not None:
            entry[1].close()

    def for_environment(self, compute_environment: str) -> Backend:
        """The backend that runs attempts placed on ``compute_environment``.

        Raises ``LookupError`` (saying why) for a remote environment whose backend could not be
        made: its jobs must never fall back to running on this host.
        """
        with self._lock:
            entry = self._remote.get(compute_environment)
            problem = self._broken.get(compute_environment)
        if problem is not None:
            raise LookupError(problem)
        return self.local if entry is None else entry[1]

    def close(self) -> None:
        """Stop every backend's background work; running attempts keep running."""
        with self._lock:
            remote, self._remote = list(self._remote.values()), {}
        for _, backend in remote:
            backend.close()
        self.local.close()

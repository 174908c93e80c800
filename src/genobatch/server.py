"""``genobatch server``: one process owning all state - store, engine, local backend, HTTP API."""

from __future__ import annotations

import json
import logging
import os

import uvicorn

from genobatch.api.app import create_app
from genobatch.api.compute_environments import create_compute_environment
from genobatch.api.job_queues import create_job_queue
from genobatch.backends.local import LocalBackend
from genobatch.config import Settings
from genobatch.credentials import KeyStore
from genobatch.engine import Engine
from genobatch.store import catalog
from genobatch.store.database import open_database

log = logging.getLogger("genobatch.server")
DEFAULT_NAME = "default"


def ensure_defaults(engine: Engine) -> None:
    """First start: a local compute environment sized to the host and a queue, both ``default``.

    Created through the same handlers as the API, so they are ordinary, editable resources.
    """
    with engine.database.connect() as conn:
        if catalog.list_documents(conn, "compute-environment") or catalog.list_documents(conn, "job-queue"):
            return
    cpus = len(engine.backend.inventory().cpus)
    compute_environment = {
        "computeEnvironmentName": DEFAULT_NAME,
        "type": "MANAGED",
        "state": "ENABLED",
        "computeResources": {"type": "EC2", "minvCpus": 0, "maxvCpus": cpus, "instanceTypes": ["optimal"]},
    }
    engine.call(create_compute_environment, compute_environment).result(timeout=30)
    queue = {
        "jobQueueName": DEFAULT_NAME,
        "state": "ENABLED",
        "priority": 1,
        "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": DEFAULT_NAME}],
    }
    engine.call(create_job_queue, queue).result(timeout=30)
    log.info("created the default compute environment (%d vCPUs) and job queue", cpus)


def build_engine(settings: Settings) -> Engine:
    """Open the store and start the engine with the local backend."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = open_database(settings.database_url)
    backend = LocalBackend(
        cpus=settings.cpus,
        memory_mib=settings.memory_mib,
        gpus=settings.gpus,
        container_runtime=settings.container_runtime,
    )
    engine = Engine(settings, database, backend)
    engine.start()
    ensure_defaults(engine)
    return engine


def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM. Running attempts survive a stop and are adopted on restart."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    keys = KeyStore.load_or_create(settings.data_dir)
    engine = build_engine(settings)
    app = create_app(engine, keys.secret_for if settings.auth else None)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    info = {"endpoint": settings.endpoint, "pid": os.getpid(), "region": settings.region, "auth": settings.auth}
    settings.server_file.write_text(json.dumps(info))
    log.info("genobatch serving the AWS Batch API at %s (auth %s)", settings.endpoint, "on" if settings.auth else "off")
    try:
        server.run()
    finally:
        engine.stop()
        try:
            if json.loads(settings.server_file.read_text()).get("pid") == os.getpid():
                settings.server_file.unlink()
        except (OSError, ValueError):
            pass

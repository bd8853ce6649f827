"""``spanwatch worker``: build the faust app from settings and run it until stopped."""

from __future__ import annotations

import logging

import faust

from agents import ingest
from agents.app import create_app
from pipeline.config import Settings
from spanwatch.broker import create_topics

log = logging.getLogger("spanwatch.worker")


def run_worker(settings: Settings) -> None:
    """Run one worker of the consumer group ``settings.worker.app_id`` (blocks)."""
    if settings.profile.create_topics:
        # Topics must exist with the right partition count before faust subscribes.
        create_topics(settings.kafka.bootstrap_servers, settings.topics.all_topics(),
                      settings.topics.partitions, settings.topics.replication_factor)
    settings.worker.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    ingest.register(app, settings)
    log.info("spanwatch worker: profile %s, source %s, broker %s", settings.kafka.profile,
             settings.topics.source, settings.kafka.bootstrap_servers)
    worker = faust.Worker(app, loglevel=settings.worker.loglevel, quiet=True,
                          redirect_stdouts=False)
    worker.execute_from_commandline()

"""Alerting agents.

* ``spanwatch.rules`` (stage 1, any worker): records of ``spanwatch.metrics``, ``.tokens``,
  ``.findings`` and ``.anomalies`` -> rule samples (:class:`~pipeline.alerting.evaluate.
  RuleEvaluator`) -> ``spanwatch.alerting``.
* ``spanwatch.alertmanager`` (stage 2): ``spanwatch.alerting`` has ONE partition, so exactly one
  worker owns every alert, group, silence and pending notification (table ``alerting``,
  restored on takeover): no duplicate notifications with N workers. Ticks, silence commands
  and delivery results arrive on the same topic, so every state change happens inside an
  event of that partition (faust's rule for table writes).
* deliveries run as tasks (apprise in a thread); their outcome comes back as a ``delivery``
  message. A notification stays in the table until delivered, so a restart retries it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, astuple, dataclass, field
from typing import Any

import faust
import orjson

from spanwatch.pipeline.alerting.driver import AlertingDriver
from spanwatch.pipeline.alerting.evaluate import RuleEvaluator
from spanwatch.pipeline.alerting.loader import RuleSet
from spanwatch.pipeline.alerting.manager import AlertManager, Pending
from spanwatch.pipeline.alerting.notify import Deliverer
from spanwatch.pipeline.config import Settings

from .control import dispatch, log_failure

log = logging.getLogger("spanwatch.alerting")


@dataclass
class AlertingRuntime:
    driver: AlertingDriver  # every decision of the alert manager's agent
    deliver: Deliverer  # runs each delivery in a thread of its own
    tasks: set[asyncio.Task[None]] = field(default_factory=set)  # deliveries running
    errors: int = 0


def register(app: faust.App, settings: Settings, ruleset: RuleSet) -> AlertingRuntime:
    topics, cfg = settings.topics, settings.alerting
    inputs = {
        topics.metrics: "metrics",
        topics.engine: "metrics",  # engine windows: golden-signal shaped records
        topics.clusters: "metrics",  # prompt-cluster windows: the same shape
        topics.labels: "metrics",  # judge-label windows: the same shape
        topics.tokens: "tokens",
        topics.findings: "findings",
        topics.anomalies: "anomalies",
    }
    source = app.topic(
        *inputs, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    alerting = app.topic(
        topics.alerting, key_serializer="raw", value_serializer="raw", partitions=1
    )
    alerts_out = app.topic(topics.alerts, key_serializer="raw", value_serializer="raw")
    silences_out = app.topic(
        topics.silences, key_serializer="raw", value_serializer="raw", partitions=1
    )
    table = app.Table("alerting", default=None, partitions=1)
    evaluator = RuleEvaluator(ruleset)
    rt = AlertingRuntime(
        AlertingDriver(AlertManager(ruleset, cfg)), Deliverer(cfg.delivery_timeout_s)
    )
    driver = rt.driver

    async def control(msg: dict[str, Any]) -> None:
        await alerting.send(key=b"control", value=orjson.dumps(msg), partition=0)

    async def evaluate_one(m: Any, rec: Any) -> None:
        if not isinstance(rec, dict):
            return
        sent = [
            await alerting.send(key=b"sample", value=orjson.dumps(s.to_dict()), partition=0)
            for s in evaluator.samples(inputs[m.topic], rec, (m.key or b"").decode())
        ]
        for fut in sent:
            await fut

    def count_error() -> None:
        rt.errors += 1

    @app.agent(source, name="spanwatch.rules")
    async def evaluate(stream: faust.StreamT[bytes]) -> None:
        await dispatch(stream, evaluate_one, count_error, log, "rule evaluation")

    @app.timer(interval=cfg.tick_interval_s)
    async def tick() -> None:
        await control({"type": "tick"})

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, assigned: Any, *, signal: Any, **kwargs: Any) -> None:
        driver.assigned()  # (re)load the table into the manager at the next event

    async def handle(m: Any, msg: dict[str, Any]) -> None:
        if not driver.loaded:
            log.info("%s", driver.load(list(table.items())))
        cmds = driver.message(msg, time.time())
        for level, line in cmds.notes:
            log.log(level, "%s", line)
        for key, value in cmds.writes:
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
        for sid, silence in cmds.silences():
            await silences_out.send(
                key=sid.encode(), partition=0, value=orjson.dumps(silence) if silence else None
            )
        for rec in cmds.records:
            await alerts_out.send(key=rec["fingerprint"].encode(), value=orjson.dumps(rec))
        for p in cmds.deliveries:
            task = asyncio.ensure_future(run_delivery(p))
            rt.tasks.add(task)
            task.add_done_callback(rt.tasks.discard)

    async def run_delivery(p: Pending) -> None:
        receivers = driver.manager.config.receivers
        result = await rt.deliver(receivers, p.receiver, p.url_index, p.title, p.body)
        level = logging.INFO if result.outcome == "ok" else logging.WARNING
        where = (p.id, p.receiver, p.url_index)
        log.log(level, "notification %s to %s (url %d): %s %s", *where, *astuple(result))
        try:
            await control({"type": "delivery", "id": p.id, **asdict(result)})
        except Exception as exc:
            driver.not_recorded(p.id)  # retried at the next tick
            log_failure(log, exc, "could not record the delivery of %s", p.id)

    @app.agent(alerting, name="spanwatch.alertmanager")
    async def manage(stream: faust.StreamT[bytes]) -> None:
        await dispatch(stream, handle, count_error, log, "alert manager")

    return rt

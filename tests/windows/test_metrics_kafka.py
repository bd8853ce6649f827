"""Golden signals from Kafka: one worker and two workers close identical windows, equal to
the pure pipeline's offline computation on the same input."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from spanwatch.devtools.broker import EmbeddedBroker
from spanwatch.devtools.cluster import WorkerProc, consume_until, wait_until
from spanwatch.devtools.traffic import TrafficGenerator
from spanwatch.pipeline.config import TopicSettings, load_settings
from spanwatch.pipeline.windows.golden import SeriesKeyer
from tests.support.offline import offline_clusters, offline_windows

pytestmark = pytest.mark.broker
# coalesce_max_spans: a partition's first 200 spans after an assignment go as one-message
# partials, the rest in coalesced batches; late spans in both must count as the pure pipeline
# counts them, however the messages are cut into batches
CONFIG = """
metrics:
  windows: ["10s", "1m/30s"]
  allowed_lateness: 2s
  idle_timeout: 15s
  coalesce_max_spans: 200
clusters: {window: 10s, sample_rate: 1.0}
"""
NS = 10**9


def _input() -> list[tuple[int, bytes]]:
    """(partition, value) messages: spans ending over ~2 minutes, 10 minutes ago."""
    gen = TrafficGenerator(
        seed=21, runaway_every=0, dependencies=True, workflow_nodes=True, prompts=True
    )
    base = (time.time_ns() // (60 * NS) - 10) * 60 * NS
    out = []
    for i in range(24):
        batch = next(gen.batches(60, base + i * 5 * NS, spread_ns=4 * NS))
        out.append((i % 4, batch.traces_data().SerializeToString()))
    return out


def _offline(msgs: list[tuple[int, bytes]], config: Path) -> list[bytes]:
    keyer = SeriesKeyer(load_settings(config).metrics.dimensions)
    return sorted(
        orjson.dumps(c.to_record(keyer.labels(orjson.loads(c.series))), option=orjson.OPT_SORT_KEYS)
        for c in offline_windows(msgs, config)
    )


def _wait_until_split(procs: list[WorkerProc], timeout: float = 60.0) -> None:
    """Until every worker owns source partitions (read from their /status)."""
    for w in procs:
        w.until(
            lambda st: (
                any(p["topic"] == "otlp_spans" for p in st["partitions"])
                and (
                    len(procs) == 1 or sum(p["topic"] == "otlp_spans" for p in st["partitions"]) < 4
                )
            ),
            timeout,
            "owning some source partitions",
        )


def _run(
    tmp: Path,
    msgs: list[tuple[int, bytes]],
    config: Path,
    workers: int,
    expected: int,
    expected_clusters: int,
    expected_calls: int = 0,
) -> tuple[list[bytes], list[bytes], list[str]]:
    """The distinct window and prompt-cluster records, and each worker's ``/metrics`` once
    they are all out (and the workers have counted ``expected_calls`` LLM calls)."""
    topics = TopicSettings().all_topics()
    tmp.mkdir(parents=True)
    with EmbeddedBroker(topics=topics, partitions=4, log_path=tmp / "tansu.log") as b:
        procs = [
            WorkerProc(b.bootstrap, tmp / f"w{i}", app_id="spanwatch", config=config)
            for i in range(workers)
        ]
        try:
            # Launched together, the workers join one group generation: faust 0.15 can leave
            # a worker idle after a rebalance that revokes partitions (see docs/ARCHITECTURE.md)
            for w in procs:
                w.launch()
            for w in procs:
                w.wait_ready()
            _wait_until_split(procs)  # every worker owns source partitions before data flows
            p = Producer({"bootstrap.servers": b.bootstrap, "batch.num.messages": 1})
            for part, value in msgs:
                p.produce("otlp_spans", value, partition=part)
            assert p.flush(30) == 0
            got = consume_until(
                b.bootstrap,
                ["spanwatch.metrics", "spanwatch.clusters"],
                lambda ms: (
                    len({m.value() for m in ms if m.topic() == "spanwatch.metrics"}) >= expected
                    and len({m.value() for m in ms if m.topic() == "spanwatch.clusters"})
                    >= expected_clusters
                ),
                timeout=120,
            )
            assert wait_until(  # the workers' own counters
                lambda: _calls([w.scrape() for w in procs]) >= expected_calls, 60
            ), "token windows not all closed"
            scrapes = [w.scrape() for w in procs]
        finally:
            for w in procs:
                w.stop()

    # at-least-once: a window re-emitted after a redelivery is the same record
    def distinct(topic: str) -> list[bytes]:
        return sorted(
            {
                orjson.dumps(orjson.loads(m.value()), option=orjson.OPT_SORT_KEYS)
                for m in got
                if m.topic() == topic
            }
        )

    return distinct("spanwatch.metrics"), distinct("spanwatch.clusters"), scrapes


CALLS = 'sum by (entity) (rate(spanwatch_llm_calls_total{entity_kind="model"}[5m]))'
PER_LAYER = "sum by (model) (rate(spanwatch_llm_requests_total[5m]))"  # the old panel's query


def _calls(scrapes: list[str]) -> float:
    from tests.support.promql import sum_by

    return sum(sum_by(CALLS, scrapes).values())


def _true_calls(msgs: list[tuple[int, bytes]], config: Path) -> dict[str, int]:
    """LLM calls per model in the closed token windows of the smallest shape, as the pure
    pipeline counts them: each call once (its outermost LLM span with usage), late ones not."""
    out: dict[str, int] = {}
    for c in offline_windows(msgs, config, tokens=True):
        key = orjson.loads(c.series)
        if key[:2] == ["@tokens", "model"] and c.spec.name == "10s":
            out[key[2]] = out.get(key[2], 0) + c.aggregate.requests
    return out


@pytest.mark.parametrize(
    "reader", ["faust", pytest.param("batch", marks=pytest.mark.compiled_worker)]
)
def test_one_worker_and_two_workers_close_identical_windows(tmp_path: Path, reader: str) -> None:
    """With either source reader (a faust agent, or the firehose's batches)."""
    config = tmp_path / "sw.yaml"
    config.write_text(CONFIG + f"ingest: {{reader: {reader}}}\n")
    msgs = _input()
    expected = _offline(msgs, config)
    assert len(expected) > 50
    clusters = sorted(
        orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in offline_clusters(msgs, config)
    )
    assert len(clusters) >= 10 and sum(orjson.loads(r)["samples"] for r in clusters) > 60
    # some prompts come after their partition passed their window: late at ingest, as their
    # spans are, whichever worker owns what (they once made two workers cluster differently)
    assert sum(orjson.loads(r)["late"] for r in clusters) > 0
    true_calls = _true_calls(msgs, config)
    n_calls = sum(true_calls.values())
    one, one_clusters, one_scrapes = _run(
        tmp_path / "one", msgs, config, 1, len(expected), len(clusters), n_calls
    )
    two, two_clusters, two_scrapes = _run(
        tmp_path / "two", msgs, config, 2, len(expected), len(clusters), n_calls
    )
    assert one == expected
    assert two == expected
    # prompt clusters: each application's clustering runs at one owner, in window order, on
    # samples sorted by (time, span): one worker, two workers and the pure pipeline agree
    assert one_clusters == clusters
    assert two_clusters == clusters
    sample: dict[str, Any] = orjson.loads(expected[0])
    assert {"series", "window", "count", "ttft_s", "latency_s", "error_rate"} <= set(sample)

    # Prometheus: counters and histograms summed over the workers are the same for one
    # worker and two, and equal what the closed 10 s windows counted
    totals = _prom_totals(one_scrapes)
    assert totals == _prom_totals(two_scrapes)
    windows = [orjson.loads(r) for r in expected]
    tens = [w for w in windows if w["window"]["name"] == "10s"]
    deps = [w for w in tens if w["series"]["layer"] == "dependency"]
    tens = [w for w in tens if w["series"]["layer"] != "dependency"]
    assert deps and tens  # Redis and vector-database calls are series of their own
    assert totals[("spanwatch_dependency_requests_total", ())] == sum(w["count"] for w in deps)
    assert totals[("spanwatch_dependency_errors_total", ())] == sum(w["errors"] for w in deps)
    assert totals[("spanwatch_dependency_request_duration_seconds_count", ())] == sum(
        w["latency_s"]["count"] for w in deps if w["latency_s"]
    )
    assert totals[("spanwatch_llm_requests_total", ())] == sum(w["count"] for w in tens)
    assert totals[("spanwatch_llm_errors_total", ())] == sum(w["errors"] for w in tens)
    assert totals[("spanwatch_llm_request_tokens_total", ("output",))] == sum(
        w["output_tokens"] for w in tens
    )
    ttft_calls = sum(w["ttft_s"]["count"] for w in tens if w["ttft_s"])
    assert totals[("spanwatch_llm_time_to_first_token_seconds_count", ())] == ttft_calls
    assert totals[("spanwatch_llm_time_to_first_token_seconds_bucket", ("+Inf",))] == ttft_calls
    # the dashboard and the alert examples only name metrics a worker exports
    from tests.runtime.test_deploy import alert_rule_queries, dashboard_queries
    from tests.support.promql import exported_names, metric_names, sum_by

    # one count per LLM call: the dashboard's calls and tokens by model count each call once
    # (a call through the app and a model server is two LLM-layer spans), and no series
    # has a blank model (agent, tool and gateway spans); the old per-layer query did not
    for scrapes in (one_scrapes, two_scrapes):
        assert {k[0]: int(v) for k, v in sum_by(CALLS, scrapes).items()} == true_calls
    served = [m for m in true_calls if "qwen" in m or "llama" in m]  # behind vLLM / SGLang
    per_layer = sum_by(PER_LAYER, one_scrapes)
    assert served and all(per_layer[(m,)] > 1.5 * true_calls[m] for m in served), per_layer
    assert ("",) in per_layer and "" not in true_calls
    panels = {q for q in dashboard_queries() if "spanwatch_llm_calls_total" in q}
    assert panels == {CALLS.replace("[5m]", "[$__rate_interval]")}
    tokens_q = next(q for q in dashboard_queries() if "spanwatch_llm_tokens_total" in q)
    by_model: dict[str, float] = {}
    for (model, _type), v in sum_by(tokens_q, one_scrapes).items():
        by_model[model] = by_model.get(model, 0.0) + v
    assert set(by_model) == set(true_calls)

    exported = set().union(*(exported_names(text) for text in one_scrapes + two_scrapes))
    for expr in dashboard_queries() + alert_rule_queries():
        assert metric_names(expr) <= exported, (expr, metric_names(expr) - exported)


def _prom_totals(scrapes: list[str]) -> dict[tuple[str, tuple[str, ...]], float]:
    """Samples of the window-fed counters and histograms summed over workers and series,
    keyed by (sample name, (direction or le,))."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, tuple[str, ...]], float] = {}
    for text in scrapes:
        for fam in text_string_to_metric_families(text):
            if fam.type not in ("counter", "histogram") or not fam.name.startswith(
                ("spanwatch_llm", "spanwatch_dependency")
            ):
                continue
            for s in fam.samples:
                if s.name.endswith("_created"):
                    continue
                extra = tuple(s.labels[k] for k in ("direction", "le") if k in s.labels)
                out[(s.name, extra)] = out.get((s.name, extra), 0.0) + s.value
    # sums of seconds and costs, added per worker in another order: equal to 1 ns / 1e-9
    return {k: round(v, 9) for k, v in out.items()}

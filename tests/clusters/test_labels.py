"""Judge label shares per window (pipeline/clusters/labels.py): counted from the judges' own
``spanwatch.findings`` records, exact in any order at the owner, late judges waited for, and
read by rules as ``label_share:<label>``."""

from __future__ import annotations

import orjson

from spanwatch.pipeline.alerting.evaluate import RuleEvaluator
from spanwatch.pipeline.alerting.loader import load_rules
from spanwatch.pipeline.safety.judge import Evaluation, evaluation_record
from spanwatch.pipeline.safety.scan import ContentItem
from spanwatch.pipeline.windows.golden import SeriesKeyer
from spanwatch.pipeline.windows.merge import WindowOutput
from spanwatch.pipeline.windows.partial import Partial
from spanwatch.pipeline.windows.preaggregate import label_partials
from spanwatch.pipeline.windows.spec import WindowSpec
from spanwatch.pipeline.windows.state import close_offline
from spanwatch.pipeline.windows.values import METRICS
from spanwatch.rules import DEFAULT_RULES_DIR
from tests.builders import merge_stage

NS = 10**9
T0 = 1_700_000_040 * NS
SPECS = (WindowSpec.parse("1m"),)


def _finding(i: int, label: str, evaluation: str = "sentiment", t_s: int = 5) -> bytes:
    """A judge's record exactly as the safety stage writes it to spanwatch.findings."""
    item = ContentItem(
        "the answer",
        "output",
        "gen_ai.output.messages",
        f"{i:032x}",
        f"{i:016x}",
        "support-agent",
        "qwen",
        T0 + t_s * NS,
    )
    ev = Evaluation(evaluation, 0.7, label, "because", f"j-{i}")
    rec = evaluation_record(item, ev, flag_labels=("negative",), severity="medium")
    return orjson.dumps(rec)


def _partials(labels: list[str], partition: int = 0, start: int = 0) -> list[Partial]:
    out = []
    for off, label in enumerate(labels, start):
        out += label_partials(partition, off, orjson.loads(_finding(off, label)), SPECS)
    return out


def test_label_shares_from_the_judges_records_in_any_order() -> None:
    p0 = _partials(["negative", "positive", "negative", "neutral"])
    p1 = _partials(["positive", "negative"], partition=1)
    closed = close_offline(p0 + p1)
    assert [c.aggregate.to_dict() for c in close_offline(p1 + p0)] == [
        c.aggregate.to_dict() for c in closed
    ]
    _, rec = WindowOutput(SeriesKeyer(("service",)), smallest="1m").record(closed[0])
    assert rec["series"] == {
        "layer": "labels",
        "service": "support-agent",
        "evaluation": "sentiment",
    }
    assert rec["judged"] == 6 and rec["labels"] == {"negative": 3, "neutral": 1, "positive": 2}
    assert rec["label_share"]["negative"] == 0.5
    assert METRICS["label_share:negative"].extract(rec) == 0.5
    assert METRICS["label_share:angry"].extract(rec) == 0.0  # judged, never that label
    assert METRICS["label_share:negative"].extract({**rec, "judged": 4}) is None  # too few
    assert "label_share:" not in METRICS and "label_share:x" in METRICS


def test_scanner_findings_and_unlabelled_results_are_not_counted() -> None:
    scanner = {"type": "finding", "kind": "pii", "category": "cn_mobile", "time_ns": T0}
    assert label_partials(0, 0, scanner, SPECS) == []
    unlabelled = orjson.loads(_finding(1, "x"))
    del unlabelled["evaluation"]["gen_ai.evaluation.score.label"]
    assert label_partials(0, 1, unlabelled, SPECS) == []


def test_label_windows_wait_for_late_judges_and_count_a_redelivery_once() -> None:
    stage = merge_stage(lateness_ns=5 * NS, lateness_by_kind={"labels": 120 * NS})
    stage.apply_bundle(0, _partials(["negative", "positive"]))
    stage.apply_bundle(0, _partials(["negative", "positive"]))  # the same offsets again
    assert stage.apply_watermark(0, 0, T0 + 90 * NS, 1) == []  # a span window would close
    stage.apply_bundle(0, _partials(["negative"], start=2))  # a judge that took a minute
    (closed,) = stage.apply_watermark(0, 0, T0 + 190 * NS, 1)
    assert closed.aggregate.result(60)["labels"] == {"negative": 2, "positive": 1}


def test_the_shipped_rule_reads_a_label_share() -> None:
    ev = RuleEvaluator(load_rules([DEFAULT_RULES_DIR]))
    closed = close_offline(_partials(["negative"] * 4 + ["positive"] * 4))
    _, rec = WindowOutput(SeriesKeyer(("service",)), smallest="1m").record(closed[0])
    rec["window"]["name"] = "5m"
    (sample,) = [s for s in ev.samples("metrics", rec) if s.rule == "NegativeUserSentiment"]
    assert sample.breach and sample.value == 0.5

"""Judge evaluations beyond the content policy: hallucination (an answer against the context
it was given), sentiment and topic presets, several judges side by side."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from spanwatch.pipeline.safety.judge import (
    EXCHANGE,
    MAX_EXCHANGE_PART,
    Evaluation,
    evaluation_record,
    exchange_item,
)
from spanwatch.pipeline.safety.scan import ContentItem
from spanwatch.pipeline.safety.settings import JudgeConfig, SafetySettings

URL = {"url": "http://judge:8000/v1", "model": "qwen-judge"}


def item(role: str, text: str, span: str = "s1") -> ContentItem:
    return ContentItem(text, role, f"gen_ai.{role}", "t" * 32, span, "rag-app", "m", 7)


def test_hallucination_preset_reads_the_exchange_and_flags_unsupported() -> None:
    j = JudgeConfig(**URL, preset="hallucination")  # type: ignore[arg-type]
    assert (j.name, j.roles, j.flag_labels) == ("hallucination", (EXCHANGE,), ("unsupported",))
    prompt = j.judge_settings().prompt.format(name=j.name, labels=list(j.labels))
    assert "CONTEXT" in prompt and "'supported', 'unsupported', 'no_context'" in prompt


def test_a_preset_fills_only_what_the_configuration_leaves_out() -> None:
    j = JudgeConfig(**URL, preset="sentiment", roles=("output",), flag_labels=("negative",))  # type: ignore[arg-type]
    assert (j.name, j.roles, j.flag_labels) == ("sentiment", ("output",), ("negative",))
    assert j.labels == ("positive", "neutral", "negative")


def test_topic_needs_its_topics_and_judges_need_their_own_names() -> None:
    with pytest.raises(ValidationError, match="give the topics as labels"):
        JudgeConfig(**URL, preset="topic")  # type: ignore[arg-type]
    topic = JudgeConfig(**URL, preset="topic", labels=("billing", "refund", "other"))  # type: ignore[arg-type]
    assert topic.labels == ("billing", "refund", "other") and topic.roles == ("input",)
    with pytest.raises(ValidationError, match="its own name"):
        SafetySettings(judge={**URL}, judges=({**URL},))  # both are "policy"
    both = SafetySettings(judge={**URL}, judges=({**URL, "preset": "hallucination"},))
    assert [j.name for j in both.all_judges()] == ["policy", "hallucination"]


def test_exchange_item_puts_the_context_before_the_answer() -> None:
    pair = exchange_item(
        [
            item("system", "Answer from the documents only."),
            item("input", "Refund window? [doc] Refunds within 30 days."),
            item("output", "You can get a refund within 90 days."),
        ]
    )
    assert pair is not None and pair.role == EXCHANGE
    assert pair.text == (
        "CONTEXT:\nAnswer from the documents only.\n\nRefund window? [doc] Refunds within "
        "30 days.\n\nANSWER:\nYou can get a refund within 90 days."
    )
    assert (pair.trace_id, pair.span_id, pair.service) == ("t" * 32, "s1", "rag-app")
    assert exchange_item([item("output", "alone")]) is None
    assert exchange_item([item("input", "no answer")]) is None


def test_exchange_keeps_the_end_of_a_long_context_and_the_start_of_a_long_answer() -> None:
    pair = exchange_item([item("input", "a" * 9000 + "END"), item("output", "START" + "b" * 9000)])
    assert pair is not None
    context, answer = pair.text.split("\n\nANSWER:\n")
    assert context.endswith("END") and len(context) == len("CONTEXT:\n") + MAX_EXCHANGE_PART
    assert answer.startswith("START") and len(answer) == MAX_EXCHANGE_PART


def test_hallucination_record_shape() -> None:
    pair = exchange_item([item("input", "ctx"), item("output", "ans")])
    assert pair is not None
    ev = Evaluation("hallucination", 0.8, "unsupported", "claims 90 days", "r1")
    rec = evaluation_record(pair, ev, flag_labels=("unsupported",), severity="high")
    assert rec["category"] == "hallucination" and rec["flagged"] and rec["role"] == EXCHANGE
    assert rec["evaluation"] == {
        "gen_ai.evaluation.name": "hallucination",
        "gen_ai.evaluation.score.value": 0.8,
        "gen_ai.evaluation.score.label": "unsupported",
        "gen_ai.evaluation.explanation": "claims 90 days",
        "gen_ai.response.id": "r1",
    }

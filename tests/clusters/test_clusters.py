"""Prompt clusters per application (pipeline/clusters/prompts.py): fingerprints that group templates
in Chinese and English, sampling and windows that do not depend on which worker or in which
order, a new kind of prompt and a changed mix found, and state that survives a save."""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest

from spanwatch.pipeline.clusters.prompts import (
    ClusterSettings,
    distance,
    fingerprint,
    load_featurizer,
)
from spanwatch.pipeline.common.errors import ConfigError
from spanwatch.pipeline.ingest.spans import LlmSpan
from spanwatch.pipeline.windows.golden import SeriesKeyer
from spanwatch.pipeline.windows.merge import MergeStage, WindowOutput
from spanwatch.pipeline.windows.partial import Partial
from spanwatch.pipeline.windows.preaggregate import cluster_partials, prompt_text
from spanwatch.pipeline.windows.spec import WindowSpec
from spanwatch.pipeline.windows.state import SeriesState
from tests.builders import default_preaggregator, llm_span, merge_stage

NS = 10**9
T0 = 1_700_000_040 * NS  # a multiple of 1 minute
MINUTE = WindowSpec.parse("1m")
TEMPLATES = {
    "refund": "我要退货，订单号 {n}，请问多久能退款到原支付账户？",
    "password": "How do I reset the password of my account {n}? I no longer get the email.",
    "shipping": "Where is my parcel {n}? The tracking page has not changed for three days.",
    "poem": "Write a short poem about the harbour at night, number {n}, in the style of Li Bai.",
}


def test_fingerprints_group_a_template_and_keep_others_apart() -> None:
    fps = {k: [fingerprint(t.format(n=n)) for n in (7, 1234, 99881)] for k, t in TEMPLATES.items()}
    for same in fps.values():
        assert max(distance(same[0], x) for x in same) <= 4
    kinds = sorted(fps)
    for i, a in enumerate(kinds):
        for b in kinds[i + 1 :]:
            assert distance(fps[a][0], fps[b][0]) > ClusterSettings().max_distance
    # full-width forms and extra spaces fold to the same text
    assert fingerprint("ＨＯＷ  do I reset") == fingerprint("how do i reset")
    assert fingerprint("") == 0


def _span(i: int, t_ns: int, service: str = "support-agent", dup: bool = False) -> LlmSpan:
    return llm_span(
        f"{i:016x}",
        trace_id=f"{i:032x}",
        service=service,
        start_ns=t_ns - NS,
        end_ns=t_ns,
        duplicate_of="ffff" if dup else None,
    )


def _traffic(seed: int, minutes: int, mix: list[dict[str, float]]) -> list[tuple[LlmSpan, str]]:
    """Calls with prompts; minute m draws templates from ``mix[m]`` (weights)."""
    rng = random.Random(seed)
    out = []
    i = 0
    for m in range(minutes):
        kinds, weights = zip(*mix[m].items(), strict=True)
        for _ in range(60):
            i += 1
            t = T0 + m * 60 * NS + rng.randrange(60 * NS)
            kind = rng.choices(kinds, weights)[0]
            out.append((_span(i, t), TEMPLATES[kind].format(n=rng.randrange(10**5))))
    return out


def _partials(calls: list[tuple[LlmSpan, str]], partition: int, per_message: int) -> list[Partial]:
    out = []
    for off, start in enumerate(range(0, len(calls), per_message)):
        chunk = calls[start : start + per_message]
        spans = [s for s, _ in chunk]
        prompts = [(s.span_id, text) for s, text in chunk]
        out += cluster_partials(partition, off, spans, prompts, MINUTE, 1.0, 500)
    return out


def _stage(cfg: ClusterSettings | None = None) -> MergeStage:
    return merge_stage(clusters=cfg or ClusterSettings(min_new_size=3))


def _records(stage: MergeStage, batches: list[list[Partial]], steps: list[int]) -> list[Any]:
    """Apply ``batches`` (one per partials partition order), then close at each watermark."""
    for batch in batches:
        stage.apply_bundle(0, batch)
    out = WindowOutput(SeriesKeyer(("service",)), smallest="1m")
    recs = []
    for wm in steps:
        for c in stage.apply_watermark(0, 0, wm, 1):
            recs.append(out.record(c))
    return recs


STEADY = {"refund": 3, "password": 2, "shipping": 1}


def test_a_new_kind_of_prompt_and_a_changed_mix_are_found() -> None:
    mix = [STEADY] * 4 + [{**STEADY, "poem": 3}]
    calls = _traffic(1, 5, mix)
    recs = _records(_stage(), [_partials(calls, 0, 25)], [T0 + 6 * 60 * NS])
    assert {topic for topic, _ in recs} == {"clusters"}
    by_minute = [r for _, r in recs]
    assert [r["series"] for r in by_minute[:1]] == [
        {"layer": "clusters", "service": "support-agent"}
    ]
    assert [r["clusters"] for r in by_minute] == [3, 3, 3, 3, 4]
    assert [r["new_clusters"] for r in by_minute] == [0, 0, 0, 0, 1]
    poem = {s.trace_id for s, text in calls if text.startswith("Write a short poem")}
    assert by_minute[4]["new"][0]["example_trace_id"] in poem
    drifts = [r["cluster_drift"] for r in by_minute]
    assert drifts[0] is None and max(drifts[1:4]) < 0.25 and drifts[4] > 0.3
    assert by_minute[0]["samples"] == 60 and by_minute[0]["largest_cluster_share"] > 0.3


def test_one_worker_and_n_workers_close_the_same_clusters() -> None:
    calls = _traffic(2, 4, [STEADY, STEADY, {**STEADY, "poem": 2}, STEADY])
    # one source partition, big messages, closed in one step ...
    one = _records(_stage(), [_partials(calls, 0, 60)], [T0 + 5 * 60 * NS])
    # ... or two source partitions (every other call), small messages, their partials in
    # the other order, the windows closed one minute at a time
    p0 = _partials(calls[0::2], 0, 7)
    p1 = _partials(calls[1::2], 1, 11)
    steps = [T0 + m * 60 * NS for m in range(1, 6)]
    many = _records(_stage(), [p1, p0], steps)
    assert len(one) == 4 and sum(r["new_clusters"] for _, r in one) == 1
    assert orjson.dumps([r for _, r in one]) == orjson.dumps([r for _, r in many])


def test_a_prompt_late_at_ingest_is_late_however_far_the_owner_has_closed() -> None:
    """A call whose window its partition had passed before the message (5 s lateness) is late
    at ingest, as its span is: counted in the window open at the mark, never clustered.
    Before, the owner decided, by whether the other partitions' watermarks had closed the
    window yet: two workers once clustered a sample one worker had not (a CI failure)."""
    pre = default_preaggregator()
    cs = ClusterSettings(window="1m", sample_rate=1.0, min_new_size=3)

    def message(part: int, off: int, calls: list[tuple[LlmSpan, str]]) -> list[Partial]:
        spans = [s for s, _ in calls]
        pre.add_message(part, off, spans)
        prompts = [(s.span_id, text) for s, text in calls]
        return cluster_partials(part, off, spans, prompts, MINUTE, 1.0, 500, clock=pre.clock(part))

    refund = TEMPLATES["refund"]
    p0 = message(0, 0, [(_span(1, T0 + 70 * NS), refund.format(n=1))])
    # partition 0 ended at 1:10 already: 0:20 is 50 s past minute 0's end + lateness
    straggler = message(0, 1, [(_span(2, T0 + 20 * NS), refund.format(n=2))])
    p1 = message(1, 0, [(_span(3, T0 + 30 * NS), refund.format(n=3))])
    (late,) = straggler[0].windows.values()
    assert straggler[0].windows.keys() == {f"1m@{T0 + 60 * NS}"}
    assert (late.late, late.seen, late.samples) == (1, 0, {})
    # the owner either had closed minute 0 when the straggler came, or had not
    out = WindowOutput(SeriesKeyer(("service",)), smallest="1m")
    early, slow = _stage(cs), _stage(cs)
    early.apply_bundle(0, p0 + p1)
    closed = early.apply_watermark(0, 0, T0 + 70 * NS, 2) + early.apply_watermark(
        0, 1, T0 + 65 * NS, 2
    )
    early.apply_bundle(0, straggler)
    slow.apply_bundle(0, p0 + p1 + straggler)
    closed_slow = slow.apply_watermark(0, 0, T0 + 70 * NS, 2) + slow.apply_watermark(
        0, 1, T0 + 65 * NS, 2
    )
    end = T0 + 10 * 60 * NS
    closed += early.apply_watermark(0, 0, end, 2) + early.apply_watermark(0, 1, end, 2)
    closed_slow += slow.apply_watermark(0, 0, end, 2) + slow.apply_watermark(0, 1, end, 2)
    a = [out.record(c)[1] for c in closed]
    b = [out.record(c)[1] for c in closed_slow]
    assert orjson.dumps(a) == orjson.dumps(b)
    assert [(r["samples"], r["late"]) for r in a] == [(1, 0), (1, 1)]


def test_sampling_is_by_span_and_duplicates_count_once() -> None:
    calls = _traffic(3, 1, [STEADY])
    spans = [s for s, _ in calls]
    prompts = [(s.span_id, text) for s, text in calls]
    a = cluster_partials(0, 0, spans, prompts, MINUTE, 0.3, 500)
    b = cluster_partials(0, 0, spans[::-1], prompts[::-1], MINUTE, 0.3, 500)
    samples = lambda ps: sorted(next(iter(ps[0].windows.values())).samples)  # noqa: E731
    assert samples(a) == samples(b) and 8 < len(samples(a)) < 32  # ~30% of 60
    dup = [_span(10**6, T0 + NS, dup=True)]
    assert cluster_partials(0, 1, dup, [(dup[0].span_id, "hi")], MINUTE, 1.0, 500) == []


def test_clusters_survive_a_save_and_restore() -> None:
    calls = _traffic(4, 4, [STEADY, STEADY, STEADY, {**STEADY, "poem": 3}])
    parts = _partials(calls, 0, 30)
    straight = _records(_stage(), [parts], [T0 + m * 60 * NS for m in range(1, 6)])
    # the same, but the owner's state goes through its table (JSON) after minute 2
    stage = _stage()
    first = _records(stage, [parts], [T0 + 60 * NS, T0 + 120 * NS])
    saved = {k: orjson.loads(orjson.dumps(v)) for k, v in stage.flush(0, 99) if v is not None}
    restored = _stage()
    restored.store.update(saved)
    rest = _records(restored, [], [T0 + m * 60 * NS for m in range(3, 6)])
    assert len(first) == 2 and len(straight) == 4
    assert orjson.dumps(first + rest) == orjson.dumps(straight)
    state = SeriesState.from_dict(next(v for k, v in saved.items() if "@clusters" in k))
    assert state.model is not None and len(state.model.clusters) == 3


def test_a_new_kind_that_starts_with_one_prompt_is_reported_once_it_has_grown() -> None:
    calls = _traffic(5, 4, [STEADY] * 4)
    poem = TEMPLATES["poem"]
    extra = [
        (_span(10**6 + i, T0 + 2 * 60 * NS + (i + 1) * NS), poem.format(n=i)) for i in range(1)
    ]
    extra += [
        (_span(10**7 + i, T0 + 3 * 60 * NS + (i + 1) * NS), poem.format(n=i)) for i in range(4)
    ]
    recs = [r for _, r in _records(_stage(), [_partials(calls + extra, 0, 40)], [T0 + 5 * 60 * NS])]
    # minute 3 sees the first poem alone (not yet a kind of request); minute 4 sees four
    assert [r["new_clusters"] for r in recs] == [0, 0, 0, 1]
    assert recs[3]["new"][0]["members_total"] == 5


def test_a_long_system_prompt_does_not_make_every_call_alike() -> None:
    system = (
        "You are ACME's support assistant. Be polite, cite the policy, never promise refunds. " * 20
    )

    def messages(question: str) -> str:  # gen_ai.input.messages as the GenAI conventions write it
        return json.dumps(
            [
                {"role": "system", "parts": [{"type": "text", "content": system}]},
                {"role": "user", "parts": [{"type": "text", "content": "hi"}]},
                {"role": "assistant", "parts": [{"type": "text", "content": "Hello!"}]},
                {"role": "user", "parts": [{"type": "text", "content": question}]},
            ]
        )

    refund = [prompt_text([messages(TEMPLATES["refund"].format(n=n))]) for n in (1, 22)]
    poem = prompt_text([messages(TEMPLATES["poem"].format(n=3))])
    assert refund[0].startswith("我要退货") and "ACME" not in refund[0]
    assert fingerprint(refund[0]) == fingerprint(refund[1])
    assert distance(fingerprint(refund[0]), fingerprint(poem)) > ClusterSettings().max_distance
    assert prompt_text(["plain text, no JSON"]) == "plain text, no JSON"


def test_an_embedding_model_plugs_in_behind_the_same_fingerprint() -> None:
    embed = load_featurizer("tests.support.keyword_embedder:fingerprint")
    a, b = "My card has still not arrived.", "When will the delivery of the new card come?"
    assert distance(fingerprint(a), fingerprint(b)) > ClusterSettings().max_distance
    assert distance(embed(a), embed(b)) <= ClusterSettings().max_distance
    assert distance(embed(a), embed("I am locked out, the login fails")) > 12
    assert load_featurizer("ngram") is fingerprint
    for spec, says in (
        ("no_such_module_x:f", "No module named"),
        ("tests.support.keyword_embedder:nothing", "has no attribute"),
        ("tests.support.keyword_embedder", "want 'ngram' or 'module:function'"),
        ("tests.support.keyword_embedder:not_an_int", "64-bit unsigned int"),
    ):
        with pytest.raises(ConfigError, match=says):
            load_featurizer(spec)


def _live_cluster_records(msgs: list[bytes], cs: ClusterSettings) -> list[dict[str, Any]]:
    """Cluster windows as one source partition and one owner close them live: each message's
    prompt partials applied, then the source watermark (its newest span end) announced, so a
    sample for a window already closed is late, not merged."""
    from spanwatch.pipeline.ingest.message import IngestOptions, ingest_message
    from spanwatch.pipeline.windows.golden import SeriesKeyer
    from spanwatch.pipeline.windows.preaggregate import prompt_partials
    from spanwatch.pipeline.windows.spec import WindowSpec

    spec = WindowSpec.parse(cs.window)
    stage = MergeStage(
        {}, lateness_ns=0, min_step_ns=spec.step_ns, idle_ns=2**62, budgets={}, clusters=cs
    )
    out = WindowOutput(SeriesKeyer(), smallest=cs.window)
    records, newest = [], 0
    for offset, value in enumerate(msgs):
        result = ingest_message(value, options=IngestOptions(collect_content=True))
        stage.apply_bundle(0, prompt_partials(0, offset, result.spans, result.contents, cs))
        newest = max([newest, *(s.end_ns for s in result.spans)])
        records += [out.record(c)[1] for c in stage.apply_watermark(0, 0, newest, 1)]
    return records


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_no_new_cluster_while_the_model_warms_up(seed: int) -> None:
    """The demo once raised NewPromptCluster at 18 s, before any new kind of prompt (40 s):
    a starting worker reads back-dated spans of long traces (minutes before the start), whose
    windows close at once with a sample or two each, so the warm-up counted in windows was
    over before the usual kinds had all been seen. Over several seeds, with the demo's
    traffic (20 traces a second in half-second ticks): nothing new before the complaints
    start, and the complaints are found."""
    from spanwatch.devtools.traffic import TrafficGenerator

    cs = ClusterSettings(window="10s", sample_rate=1.0, warmup_windows=3)
    gen = TrafficGenerator(seed, prompts=True)
    start = 1_800_000_000 * 10**9
    new_from = start + 40 * 10**9
    msgs = []
    for tick in range(140):
        now = start + tick * 500_000_000
        gen.new_prompts = now >= new_from
        msgs += [next(gen.batches(1, now)).traces_data().SerializeToString() for _ in range(10)]
    records = _live_cluster_records(msgs, cs)
    early = [r["window"] for r in records if r["window"]["end_ns"] <= new_from and r["new"]]
    assert early == []
    assert any(r["new_clusters"] for r in records if r["window"]["start_ns"] >= new_from)

"""Contract checks over every aggregate a window holds (pipeline/windows/aggregate.py), like river's
``checks``: merging is associative and commutative, an empty aggregate is its identity, a
merge never aliases the other's state, and JSON and pickle round-trips keep everything."""

from __future__ import annotations

import pickle
import random
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from spanwatch.pipeline.clusters.labels import LabelCounts
from spanwatch.pipeline.clusters.prompts import ClusterSamples, sample_key
from spanwatch.pipeline.engine.gauges import ENGINE_GAUGES, EngineAggregate, EngineSample
from spanwatch.pipeline.ingest.spans import Layer, LlmSpan
from spanwatch.pipeline.tokens.burn import TokenCounts
from spanwatch.pipeline.tokens.pricing import DEFAULT_PRICES, PriceTable
from spanwatch.pipeline.windows.aggregate import Mergeable
from spanwatch.pipeline.windows.golden import SignalAggregate
from spanwatch.pipeline.windows.sketch import QuantileSketch

NS = 10**9
PRICES = PriceTable.load(DEFAULT_PRICES)


def _span(rng: random.Random) -> LlmSpan:
    end = 1_700_000_000 * NS + rng.randrange(60) * NS
    dur = rng.random() * 5
    return LlmSpan(
        trace_id=f"{rng.getrandbits(128):032x}",
        span_id=f"{rng.getrandbits(64):016x}",
        parent_span_id="",
        name="chat",
        service=rng.choice(["a", "b"]),
        layer=Layer.APP,
        operation="chat",
        span_kind="client",
        start_ns=end - int(dur * NS),
        end_ns=end,
        duration_s=dur,
        status=rng.choice(["ok", "ok", "error"]),
        error_type=rng.choice([None, "timeout", "RateLimit"]),
        request_model=rng.choice(["gpt-4o-mini", "llama-3", "qwen2.5-72b"]),
        ttft_s=rng.random(),
        tpot_s=rng.random() / 50,
        input_tokens=rng.randrange(5000),
        output_tokens=rng.randrange(800),
        cache_read_tokens=rng.randrange(100),
    )


def _sketch(rng: random.Random) -> QuantileSketch:
    s = QuantileSketch()
    for _ in range(rng.randrange(0, 40)):
        s.add(rng.choice([0.0, rng.random(), rng.lognormvariate(0, 2)]))
    return s


def _signals(rng: random.Random) -> SignalAggregate:
    a = SignalAggregate()
    for _ in range(rng.randrange(0, 20)):
        a.add(_span(rng), {"app": rng.randrange(10**9)})
    a.late = rng.randrange(3)
    return a


def _tokens(rng: random.Random) -> TokenCounts:
    t = TokenCounts()
    for _ in range(rng.randrange(0, 20)):
        t.add(_span(rng), PRICES)
    t.late = rng.randrange(3)
    return t


def _engine(rng: random.Random) -> EngineAggregate:
    e = EngineAggregate()
    for _ in range(rng.randrange(0, 20)):
        gauge = rng.choice(ENGINE_GAUGES)
        value = rng.random() if gauge == "kv_cache_usage" else float(rng.randrange(64))
        e.add(EngineSample("vllm", "qwen", gauge, 1_700_000_000 * NS, value))
    e.late = rng.randrange(3)
    return e


def _clusters(rng: random.Random) -> ClusterSamples:
    c = ClusterSamples(limit=8)
    for _ in range(rng.randrange(0, 20)):
        span = f"{rng.getrandbits(64):016x}"
        c.add(sample_key(span), rng.randrange(10**9), span, "t", rng.getrandbits(64))
    c.late = rng.randrange(3)
    return c


def _labels(rng: random.Random) -> LabelCounts:
    c = LabelCounts()
    for _ in range(rng.randrange(0, 20)):
        c.add(rng.choice(["positive", "negative", "neutral"]))
    c.late = rng.randrange(3)
    return c


MAKERS: dict[str, tuple[Callable[[random.Random], Any], type[Mergeable]]] = {
    "sketch": (_sketch, QuantileSketch),
    "signals": (_signals, SignalAggregate),
    "tokens": (_tokens, TokenCounts),
    "engine": (_engine, EngineAggregate),
    "clusters": (_clusters, ClusterSamples),
    "labels": (_labels, LabelCounts),
}


def _state(x: Mergeable) -> bytes:
    return orjson.dumps(x.to_dict(), option=orjson.OPT_SORT_KEYS)


@pytest.fixture(params=sorted(MAKERS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("seed", range(5))
def test_merge_is_associative_and_commutative(kind: str, seed: int) -> None:
    make, _ = MAKERS[kind]

    def three() -> list[Any]:
        rng = random.Random(seed)
        return [make(rng), make(rng), make(rng)]

    a, b, c = three()
    a.merge(b)
    a.merge(c)  # (a + b) + c
    a2, b2, c2 = three()
    b2.merge(a2)
    c2.merge(b2)  # c + (b + a)
    assert _state(a) == _state(c2)


def test_empty_is_the_identity_and_merging_never_aliases(kind: str) -> None:
    make, cls = MAKERS[kind]
    rng = random.Random(1)
    x = make(rng)
    before = _state(x)
    empty = cls.from_dict(type(x)().to_dict())
    empty.merge(x)
    assert _state(empty) == before
    x.merge(make(rng))  # changing the other one afterwards leaves the merged copy alone
    assert _state(empty) == before


def test_json_and_pickle_round_trips(kind: str) -> None:
    make, cls = MAKERS[kind]
    x = make(random.Random(2))
    assert _state(cls.from_dict(orjson.loads(orjson.dumps(x.to_dict())))) == _state(x)
    assert _state(pickle.loads(pickle.dumps(x))) == _state(x)

"""Property: arbitrary or mutated bytes only ever yield records or dead letters."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spanwatch.devtools.traffic import TrafficGenerator
from spanwatch.pipeline.ingest.message import ingest_message, records_to_messages
from tests.builders import default_preaggregator
from tests.support.otlp_json import otlp_json

NOW = 1_700_000_000 * 10**9
_gen = TrafficGenerator(seed=3)
_VALID_PROTO = next(_gen.batches(40, 1_700_000_000 * 10**9)).traces_data()
SEEDS = [_VALID_PROTO.SerializeToString(), otlp_json(_VALID_PROTO)]


def _check(value: bytes) -> None:
    result = ingest_message(value, wall_ns=NOW)
    assert result.spans or result.dead_letters
    for dl in result.dead_letters:
        assert dl.reason and isinstance(dl.value, bytes)
        assert len(dl.bounded(4096).value) <= 4096
    # what the worker sends: records through orjson (64-bit integers only), partials
    records_to_messages(result.spans)
    default_preaggregator().add_message(0, 0, result.spans)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes(value: bytes) -> None:
    _check(value)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8),
    st.integers(0, 10**6),
)
def test_mutated_valid_messages(seed: bytes, flips: list[tuple[int, int]], cut: int) -> None:
    buf = bytearray(seed)
    for pos, byte in flips:
        buf[pos % len(buf)] = byte
    _check(bytes(buf[: max(1, cut % (len(buf) + 1))]))


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.integers(2**63 - 2, 2**70).map(str)  # beyond int64 and uint64, as OTLP/JSON text
        | st.floats()
        | st.text(),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "resourceSpans",
                        "scopeSpans",
                        "spans",
                        "traceId",
                        "spanId",
                        "attributes",
                        "key",
                        "value",
                        "intValue",
                        "stringValue",
                        "kind",
                        "status",
                        "code",
                        "events",
                        "startTimeUnixNano",
                        "endTimeUnixNano",
                        "doubleValue",
                    ]
                ),
                inner,
                max_size=4,
            )
        ),
        max_leaves=30,
    )
)
def test_arbitrary_json_shapes(doc: object) -> None:
    _check(json.dumps(doc).encode())

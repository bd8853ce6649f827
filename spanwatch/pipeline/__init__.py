"""spanwatch's pure core: everything that computes something, testable with no broker.

The data flow reads top to bottom: ``decode`` (bytes -> OTLP views) -> ``normalize``
(views -> :class:`~pipeline.ingest.spans.LlmSpan`) -> ``ingest`` (one Kafka message in, records and
dead letters out). Later stages (metrics, tokens, stitching, safety, anomaly, rules) consume
``LlmSpan`` records.
"""

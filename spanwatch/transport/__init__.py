"""Kafka-facing plumbing beneath the agents: the faust app and its no-loss consumer, and the
firehose that reads the source topic in batches (as faust keeps its own in faust.transport)."""

"""spanwatch: real-time observability for LLM and agent applications, from OpenTelemetry spans
on Kafka.

One import name, by audience: ``spanwatch.pipeline`` (the pure, broker-free core),
``spanwatch.agents`` (the faust agents), ``spanwatch.rules`` (the shipped alert rules),
``spanwatch.runtime`` (the worker, Kafka clients, Prometheus, HTTP), ``spanwatch.cli`` and
``spanwatch.commands`` (the command line), ``spanwatch.otel`` (the app-side exporter, extra
``otel``) and ``spanwatch.devtools`` (development broker, demo, traffic, benchmarks)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("spanwatch")  # the one version, from pyproject.toml
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0+unknown"

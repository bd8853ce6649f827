"""For developers, tests and demos, not for a production worker: the embedded development
broker, child processes started and stopped by PID, the traffic generator, the demo, a
stand-in webhook and the benchmarks with their public evaluation data."""

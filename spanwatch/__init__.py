"""spanwatch: the command line, the embedded development broker, the demo and benchmarks."""

__version__ = "0.1.0"

"""spanwatch: the command line, the embedded development broker, the demo and benchmarks."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("spanwatch")  # the one version, from pyproject.toml
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0+unknown"

"""What every stage's configuration section is made of: strict, frozen pydantic models,
durations, and secrets read from the environment.

Each stage owns its section (``IngestSettings`` in :mod:`~spanwatch.pipeline.ingest`,
``SafetySettings`` in :mod:`~spanwatch.pipeline.safety.settings`, ...);
:mod:`~spanwatch.pipeline.config` composes them into the worker's ``Settings``.
"""

from __future__ import annotations

import os
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from .durations import parse_duration_ns
from .errors import ConfigError

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: str) -> str:
    """``${NAME}`` -> the environment variable; an unset variable is a :class:`ConfigError`.

    Used for secrets (webhook URLs, API keys) so they live in the environment, not in files.
    """

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in os.environ:
            raise ConfigError(f"environment variable {name} is not set")
        return os.environ[name]

    return _ENV_REF.sub(sub, value)


def _check_duration(v: str) -> str:
    parse_duration_ns(v)  # ValueError: "bad duration '5x': use a positive number with ..."
    return v


Duration = Annotated[str, AfterValidator(_check_duration)]  # "500ms", "10s", "5m", "1h"


class SettingsModel(BaseModel):
    """A configuration section: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

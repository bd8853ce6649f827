"""The alert rules shipped with spanwatch (YAML files in this directory).

It is a package only so that the default rules install with spanwatch: ``alerting.rules``
defaults to :data:`DEFAULT_RULES_DIR`. ``examples/`` is not loaded.
"""

from pathlib import Path

DEFAULT_RULES_DIR = Path(__file__).resolve().parent

"""Subcommands with several verbs of their own (``safety``, ``anomaly``, ``rules``, ...)."""

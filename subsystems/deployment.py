"""The embedded default deployment of the base (``fsw.deployments`` entry point ``default``)."""

from __future__ import annotations

from importlib import resources

#: TOML text of the default base: all processes on this host, simulated boards.
DEFAULT_DEPLOYMENT: str = resources.files("subsystems").joinpath("base.toml").read_text(encoding="utf-8")

"""The embedded deployments of the base (``fsw.deployments`` entry points ``default``, ``lunation``)."""

from __future__ import annotations

from importlib import resources

#: TOML text of the default base: all processes on this host, simulated boards.
DEFAULT_DEPLOYMENT: str = resources.files("subsystems").joinpath("base.toml").read_text(encoding="utf-8")

#: TOML text of a lunation: the same base on 1 s frames, for runs of weeks (``fsw up lunation``).
LUNATION_DEPLOYMENT: str = resources.files("subsystems").joinpath("lunation.toml").read_text(encoding="utf-8")

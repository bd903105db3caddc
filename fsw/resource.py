"""Resources: one owner, an idempotent ``close()``, and a ``with`` form.

Every socket holder, board, link, log file and server in lunar-fsw derives from
:class:`Resource`: it implements ``close()`` (safe to call more than once) and
gets the context-manager protocol from here.
"""

from __future__ import annotations

import abc
from types import TracebackType
from typing import TypeVar

_R = TypeVar("_R", bound="Resource")


class Resource(abc.ABC):
    """Something that must be released: ``with resource: ...`` closes it on the way out."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release what the resource holds. Safe to call more than once."""

    def __enter__(self: _R) -> _R:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

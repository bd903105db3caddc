"""The one error tree of lunar-fsw.

Every error the framework raises on purpose derives from :class:`FswError`.
Where it helps, an error also derives from the standard-library type a caller
would naturally catch (``TimeoutError``, ``ValueError``)::

    FswError
    ├── ConfigError (ValueError)          bad deployment file, monitor table, option
    ├── CodecError (ValueError)           a bus frame that is not a valid envelope
    ├── DictionaryError (ValueError)      a bad dictionary declaration
    ├── CommandRejected                   a command refused, with the reason
    ├── BusError                          a socket could not be set up or used
    ├── DeadlineMissed (TimeoutError)     a blocking call ran out of time (a fault)
    ├── ProcessError                      a child could not be started or stopped
    ├── StorageError (OSError)            a state store that cannot be opened, read or written
    ├── LinkRejected (ValueError)         a space-link packet refused, with its failure code
    └── BoardError                        anything between flight code and a board
        ├── BoardUnavailable              unknown backend name or failed import
        ├── BoardTimeout (TimeoutError)   a request got no answer within its deadline
        ├── BoardLinkLost                 the board stopped answering
        └── FrameError (ValueError)       a board wire frame that does not decode

Errors are translated at boundaries with ``raise ... from``; a message always
names what was wrong and where.
"""

from __future__ import annotations


class FswError(Exception):
    """Root of every error lunar-fsw raises on purpose."""


class ConfigError(FswError, ValueError):
    """A deployment file, table or option is invalid; the message names the key."""


class CodecError(FswError, ValueError):
    """A bus frame is not a valid envelope (not msgpack, wrong types, too large)."""


class DictionaryError(FswError, ValueError):
    """A telemetry, event or command declaration is invalid."""


class CommandRejected(FswError):
    """A command was refused before execution.

    ``reason`` is the text sent back to the commander in the rejection.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BusError(FswError):
    """A bus socket could not be created, bound, connected or used."""


class DeadlineMissed(FswError, TimeoutError):
    """A blocking call ran out of its deadline where expiry is a fault."""


class ProcessError(FswError):
    """A child process could not be started, supervised or stopped."""


class StorageError(FswError, OSError):
    """A state store (SQLite) cannot be opened, read or written, or is damaged."""


class LinkRejected(FswError, ValueError):
    """A space-link packet was refused (see :mod:`fsw.spacelink`).

    ``code`` is the failure code sent in TM[1,2] (a :class:`fsw.spacelink.Failure`);
    ``request`` the request id (packet id and sequence control, 4 bytes) when the header
    could be read, else ``None``.
    """

    def __init__(self, code: int, reason: str, request: bytes | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.request = request


class BoardError(FswError):
    """Anything that goes wrong between flight code and a board."""


class BoardUnavailable(BoardError):
    """No board backend of that name, or its module failed to import."""


class BoardTimeout(BoardError, TimeoutError):
    """A board request got no valid answer within its deadline and retries."""


class BoardLinkLost(BoardError):
    """The board stopped answering; the link is declared lost."""


class FrameError(BoardError, ValueError):
    """A board wire frame does not decode (bad COBS, CRC, length or fields)."""

"""The one exception hierarchy of authsome.

Every error carries what the CLI needs to report it: a message (what
happened), an optional hint (what to do next), an exit code (DESIGN.md
section 7) and a short machine-readable type for ``--json`` output.
Messages name the provider and connection and never contain a secret.

    AuthsomeError                      1  unexpected
    +-- UsageError                     2  usage
    |   +-- ProviderDefinitionError    2  invalid_provider
    +-- UnknownProviderError           3  unknown_provider
    +-- ConnectionNotFoundError        3  unknown_connection
    +-- InvalidCredentialError         4  invalid_credential
    +-- NotLoggedInError               5  not_logged_in
    +-- NoInputError                   5  no_input
    +-- TokenExpiredError              6  token_expired
    +-- StoreError                     7  store
    |   +-- StoreLockedError           7  store_locked
    |   +-- StoreCorruptError          7  store_corrupt
    |   +-- WrongPassphraseError       7  wrong_passphrase
    |   +-- ConflictError              7  conflict
    |   +-- ForbiddenError             7  forbidden
    +-- CancelledError                 8  cancelled
    |   +-- InputTimeoutError          8  timeout
    +-- IsolationUnavailableError      9  isolation_unavailable
"""

from __future__ import annotations


class AuthsomeError(Exception):
    """Base class. ``str(err)`` is the message; it never holds a secret."""

    exit_code = 1
    type = "unexpected"

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def to_dict(self) -> dict:
        return {"code": self.exit_code, "type": self.type, "message": self.message, "hint": self.hint}


class UsageError(AuthsomeError):
    exit_code = 2
    type = "usage"


class ProviderDefinitionError(UsageError):
    """A provider file is malformed; the message names the file and the field."""

    type = "invalid_provider"


class UnknownProviderError(AuthsomeError):
    exit_code = 3
    type = "unknown_provider"


class ConnectionNotFoundError(AuthsomeError):
    exit_code = 3
    type = "unknown_connection"


class InvalidCredentialError(AuthsomeError):
    exit_code = 4
    type = "invalid_credential"


class NotLoggedInError(AuthsomeError):
    exit_code = 5
    type = "not_logged_in"


class NoInputError(AuthsomeError):
    """There is no way to ask the user for a secret (no terminal, no display)."""

    exit_code = 5
    type = "no_input"


class TokenExpiredError(AuthsomeError):
    exit_code = 6
    type = "token_expired"


class StoreError(AuthsomeError):
    exit_code = 7
    type = "store"


class StoreLockedError(StoreError):
    type = "store_locked"


class StoreCorruptError(StoreError):
    type = "store_corrupt"


class WrongPassphraseError(StoreError):
    type = "wrong_passphrase"


class ConflictError(StoreError):
    type = "conflict"


class ForbiddenError(StoreError):
    type = "forbidden"


class CancelledError(AuthsomeError):
    exit_code = 8
    type = "cancelled"


class InputTimeoutError(CancelledError):
    type = "timeout"


class IsolationUnavailableError(AuthsomeError):
    exit_code = 9
    type = "isolation_unavailable"

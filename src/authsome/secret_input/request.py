"""What the sensitive input pipeline asks the user for.

A ``SecretRequest`` describes one credential to capture (provider, connection,
fields) and carries the check a value must pass before it is accepted. The
front ends (browser form, terminal) only collect values and call ``validate``;
storing them is the caller's job.
"""

from __future__ import annotations

from collections.abc import Callable


class FieldSpec:
    """One input field: ``secret`` fields are masked and never echoed back."""

    __slots__ = ("name", "label", "secret", "hint")

    def __init__(self, name: str, label: str, secret: bool = True, hint: str | None = None) -> None:
        self.name = name
        self.label = label
        self.secret = secret
        self.hint = hint

    def __repr__(self) -> str:
        return f"FieldSpec(name={self.name!r}, label={self.label!r}, secret={self.secret!r})"


def _accept_anything(values: dict[str, str]) -> None:
    return None


class SecretRequest:
    """A credential to capture for ``provider`` / ``connection``.

    ``validate`` receives every field's value and raises
    ``authsome.errors.InvalidCredentialError(message, hint)`` for a bad one.
    """

    __slots__ = ("provider", "display_name", "connection", "fields", "validate")

    def __init__(
        self,
        provider: str,
        display_name: str,
        connection: str,
        fields: list[FieldSpec],
        validate: Callable[[dict[str, str]], None] = _accept_anything,
    ) -> None:
        if not fields:
            raise ValueError("a SecretRequest needs at least one field")
        self.provider = provider
        self.display_name = display_name
        self.connection = connection
        self.fields = list(fields)
        self.validate = validate

    def __repr__(self) -> str:
        names = [f.name for f in self.fields]
        return f"SecretRequest(provider={self.provider!r}, connection={self.connection!r}, fields={names!r})"

    def describe(self) -> str:
        """Human wording of what is asked, e.g. ``OpenAI API key for openai (default)``."""
        if len(self.fields) == 1:
            what = f"{self.display_name} {self.fields[0].label}"
        else:
            what = f"{self.display_name} credentials"
        return f"{what} for {self.provider} ({self.connection})"

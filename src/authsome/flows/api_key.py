"""The API-key flow: ask for the provider's credential fields and validate them."""

from __future__ import annotations


def api_key_request(provider, connection: str):
    """A SecretRequest for ``provider``'s credential fields, validated by the provider's patterns."""
    from authsome.secret_input.request import FieldSpec, SecretRequest

    fields = provider.fields

    def validate(values: dict[str, str]) -> None:
        for field in fields:
            field.validate(values.get(field.name, ""), provider.display_name)

    return SecretRequest(
        provider=provider.name,
        display_name=provider.display_name,
        connection=connection,
        fields=[FieldSpec(name=f.name, label=f.label, secret=f.secret, hint=f.hint) for f in fields],
        validate=validate,
    )


def env_vars_for(provider) -> dict[str, str]:
    """Field name -> environment variable used by ``--from-env``."""
    return {f.name: f.env_var for f in provider.fields if f.env_var}

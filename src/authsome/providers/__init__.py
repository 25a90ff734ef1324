"""Provider definitions: schema and validation, the registry, the bundled catalog.

Importing this package is cheap (no regex, no JSON, no HTTP): ``authsome get``
loads exactly one provider file on its fast path.
"""

from authsome.providers.hosts import host_matches, normalize_host
from authsome.providers.model import CredentialField, Injection, Provider
from authsome.providers.parse import is_valid_name, parse_provider
from authsome.providers.registry import ProviderRegistry

__all__ = [
    "CredentialField",
    "Injection",
    "Provider",
    "ProviderRegistry",
    "host_matches",
    "is_valid_name",
    "normalize_host",
    "parse_provider",
]

"""Constants shared by the proxy e2e tests: host names, test keys, provider definitions."""

from __future__ import annotations

import secrets

HOSTS = [
    "api.openai.com",
    "api.anthropic.com",
    "unmatched.example",
    "api.openai.com.evil.test",
    "evil-api.openai.com",
]
OPENAI_KEY = "sk-test" + secrets.token_hex(16)
ANTHROPIC_KEY = "sk-ant-test" + secrets.token_hex(16)

OPENAI = {
    "schema_version": 2,
    "name": "openai",
    "display_name": "OpenAI",
    "auth_type": "api_key",
    "flow": "api_key",
    "hosts": ["api.openai.com"],
    "api_key": {"header_name": "Authorization", "header_prefix": "Bearer", "env_var": "OPENAI_API_KEY"},
}
ANTHROPIC = {
    "schema_version": 2,
    "name": "anthropic",
    "display_name": "Anthropic",
    "auth_type": "api_key",
    "flow": "api_key",
    "hosts": ["api.anthropic.com"],
    "api_key": {"header_name": "x-api-key", "header_prefix": "", "env_var": "ANTHROPIC_API_KEY"},
}
DEFAULT_ROUTES = [
    {"provider": OPENAI, "secrets": {"api_key": OPENAI_KEY}},
    {"provider": ANTHROPIC, "secrets": {"api_key": ANTHROPIC_KEY}},
]

"""Run the provider definition vectors in tests/vectors/providers/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from authsome.errors import ProviderDefinitionError
from authsome.providers import parse_provider
from authsome.providers.registry import load_provider_file

VECTORS = Path(__file__).parents[1] / "vectors" / "providers"
EXPECTED = {k: v for k, v in json.loads((VECTORS / "expected_fields.json").read_text()).items() if k != "_comment"}
GOOD = sorted(VECTORS.glob("good_*.json"))
FAIL = sorted(VECTORS.glob("fail_*.json"))


def test_vector_set_is_complete():
    assert len(GOOD) >= 10 and len(FAIL) >= 30
    assert sorted(EXPECTED) == [p.name for p in FAIL], "every fail_ vector says which field it names"
    assert {p.name for p in VECTORS.iterdir()} <= {p.name for p in GOOD + FAIL} | {"expected_fields.json", "README.md"}


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_good_vector_parses(path):
    provider = load_provider_file(path, source="custom")
    assert provider.raw == json.loads(path.read_text()), "the original definition is kept as is"
    assert provider.to_dict()["name"] == provider.name
    for pattern in provider.hosts:
        assert pattern in ("{base_host}", "*.{base_host}") or provider.matches_host(pattern.replace("*.", "x.", 1))


@pytest.mark.parametrize("path", FAIL, ids=lambda p: p.name)
def test_fail_vector_is_refused_naming_the_field(path):
    with pytest.raises(ProviderDefinitionError) as info:
        load_provider_file(path, source="custom")
    message = info.value.message
    assert message.startswith(f"Invalid provider definition in {path}: ")
    assert f"field '{EXPECTED[path.name]}'" in message, message
    assert info.value.exit_code == 2


@pytest.mark.parametrize("path", FAIL, ids=lambda p: p.name)
def test_fail_vector_is_refused_without_a_path_too(path):
    data = json.loads(path.read_text())
    with pytest.raises(ProviderDefinitionError) as info:
        parse_provider(data, source="custom")
    assert f"field '{EXPECTED[path.name]}'" in info.value.message

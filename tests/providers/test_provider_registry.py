"""ProviderRegistry: lookup order, name safety, listing with broken files, register."""

from __future__ import annotations

import json
import os
import stat

import pytest

from authsome.errors import ProviderDefinitionError, UnknownProviderError
from authsome.providers import ProviderRegistry
from tests.provider_defs import api_key_provider

ACME = api_key_provider()


def write(path, data) -> None:
    path.write_text(data if isinstance(data, str) else json.dumps(data))


@pytest.fixture
def custom_dir(tmp_path):
    directory = tmp_path / "providers"
    directory.mkdir()
    return directory


def test_bundled_lookup(custom_dir):
    registry = ProviderRegistry(custom_dir)
    openai = registry.get("openai")
    assert openai.source == "bundled" and openai.display_name == "OpenAI"
    assert registry.exists("openai") and not registry.exists("no-such-provider")


def test_custom_definition_overrides_bundled(custom_dir):
    override = dict(ACME, name="openai", display_name="OpenAI via corp gateway", hosts=["llm.corp.example"])
    write(custom_dir / "openai.json", override)
    registry = ProviderRegistry(custom_dir)
    provider = registry.get("openai")
    assert provider.source == "custom" and provider.display_name == "OpenAI via corp gateway"
    assert provider.matches_host("llm.corp.example") and not provider.matches_host("api.openai.com")
    assert [p for p in registry.all() if p.name == "openai"][0].source == "custom"
    assert registry.names().count("openai") == 1


def test_custom_only_provider(custom_dir):
    write(custom_dir / "acme.json", ACME)
    registry = ProviderRegistry(custom_dir)
    assert registry.get("acme").path == str(custom_dir / "acme.json")
    assert "acme" in registry.names() and "openai" in registry.names()
    assert registry.names() == sorted(registry.names())


@pytest.mark.parametrize(
    "name",
    [
        "no-such-provider",
        "../openai",
        "openai/../openai",
        "/etc/passwd",
        "OPENAI",
        "",
        "a..b",
        ".hidden",
        "openai\x00",
        "open ai",
        "x" * 65,
        "..",
        ".",
    ],
)
def test_unknown_or_invalid_names(custom_dir, name):
    registry = ProviderRegistry(custom_dir)
    with pytest.raises(UnknownProviderError) as info:
        registry.get(name)
    assert info.value.exit_code == 3
    assert info.value.hint == (
        "Run 'authsome list --all' to see known providers, or 'authsome register FILE' to add one."
    )
    assert not registry.exists(name)


def test_traversal_never_reads_outside_the_directories(tmp_path):
    custom = tmp_path / "home" / "providers"
    custom.mkdir(parents=True)
    write(tmp_path / "home" / "evil.json", dict(ACME, name="evil"))
    registry = ProviderRegistry(custom)
    with pytest.raises(UnknownProviderError):
        registry.get("../evil")


def test_get_reads_only_the_requested_file(custom_dir):
    write(custom_dir / "broken.json", "{not json")
    write(custom_dir / "acme.json", ACME)
    registry = ProviderRegistry(custom_dir)
    assert registry.get("acme").name == "acme"  # the broken neighbour is never opened
    with pytest.raises(ProviderDefinitionError) as info:
        registry.get("broken")
    assert str(custom_dir / "broken.json") in info.value.message
    assert info.value.exit_code == 2


def test_all_skips_broken_custom_files_and_records_them(custom_dir):
    write(custom_dir / "broken.json", "{not json")
    write(custom_dir / "badhost.json", dict(ACME, name="badhost", hosts=["api.*.example"]))
    write(custom_dir / "wrongname.json", dict(ACME, name="othername"))
    write(custom_dir / "acme.json", ACME)
    write(custom_dir / "notes.txt", "ignored")
    registry = ProviderRegistry(custom_dir)
    providers = {p.name: p for p in registry.all()}
    assert "acme" in providers and "openai" in providers
    assert not {"broken", "badhost", "wrongname", "othername"} & set(providers)
    assert len(registry.errors) == 3
    failed = {
        name: next(m for m in registry.errors if str(custom_dir / name) in m)
        for name in ("broken.json", "badhost.json", "wrongname.json")
    }
    assert "not valid UTF-8 JSON" in failed["broken.json"]
    assert "field 'hosts[0]'" in failed["badhost.json"]
    assert "field 'name'" in failed["wrongname.json"]
    registry.all()
    assert len(registry.errors) == 3, "errors are reset on every listing, not accumulated"


def test_missing_custom_dir_is_fine(tmp_path):
    registry = ProviderRegistry(tmp_path / "does-not-exist")
    assert "openai" in registry.names()
    assert registry.get("openai").source == "bundled"
    assert ProviderRegistry(None).get("openai").source == "bundled"


def test_register_installs_a_validated_copy(custom_dir, tmp_path):
    source = tmp_path / "my-service.json"  # file name differs from the provider name
    data = dict(ACME, x_extra={"kept": True})
    write(source, data)
    old_umask = os.umask(0)
    try:
        provider = ProviderRegistry(custom_dir).register(source)
    finally:
        os.umask(old_umask)
    destination = custom_dir / "acme.json"
    assert provider.name == "acme" and provider.source == "custom" and provider.path == str(destination)
    assert stat.S_IMODE(destination.stat().st_mode) == 0o600
    assert json.loads(destination.read_text()) == data
    assert [p.name for p in custom_dir.iterdir()] == ["acme.json"]  # no temp files left
    assert ProviderRegistry(custom_dir).get("acme").raw == data


def test_register_replaces_an_existing_definition(custom_dir, tmp_path):
    registry = ProviderRegistry(custom_dir)
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    write(first, ACME)
    write(second, dict(ACME, display_name="Acme v2"))
    registry.register(first)
    registry.register(second)
    assert registry.get("acme").display_name == "Acme v2"
    assert sorted(p.name for p in custom_dir.iterdir()) == ["acme.json"]


def test_register_creates_the_directory(tmp_path):
    custom = tmp_path / "home" / "providers"
    write(tmp_path / "acme.json", ACME)
    ProviderRegistry(custom).register(tmp_path / "acme.json")
    assert stat.S_IMODE(custom.stat().st_mode) & 0o077 == 0


@pytest.mark.parametrize(
    "content,needle",
    [
        (dict(ACME, hosts=["api.acme.example", "*.com"]), "field 'hosts[1]'"),
        (dict(ACME, name="../../etc/passwd"), "field 'name'"),
        (dict(ACME, api_key={"header_name": "X", "key_pattern": "a+"}), "field 'api_key.key_pattern_hint'"),
        ("{not json", "not valid UTF-8 JSON"),
        ("[1, 2]", "field '(root)'"),
        (b"\xff\xfe\x00", "not valid UTF-8 JSON"),
    ],
)
def test_register_refuses_invalid_files_and_writes_nothing(custom_dir, tmp_path, content, needle):
    source = tmp_path / "bad.json"
    if isinstance(content, bytes):
        source.write_bytes(content)
    else:
        write(source, content)
    with pytest.raises(ProviderDefinitionError) as info:
        ProviderRegistry(custom_dir).register(source)
    assert needle in info.value.message
    assert str(source) in info.value.message
    assert list(custom_dir.iterdir()) == []


def test_register_missing_file(custom_dir, tmp_path):
    with pytest.raises(ProviderDefinitionError) as info:
        ProviderRegistry(custom_dir).register(tmp_path / "nope.json")
    assert "nope.json" in info.value.message


def test_register_refuses_huge_files(custom_dir, tmp_path):
    source = tmp_path / "big.json"
    write(source, dict(ACME, padding="x" * 300_000))
    with pytest.raises(ProviderDefinitionError):
        ProviderRegistry(custom_dir).register(source)


def test_register_without_custom_dir(tmp_path):
    write(tmp_path / "acme.json", ACME)
    with pytest.raises(ProviderDefinitionError):
        ProviderRegistry(None).register(tmp_path / "acme.json")


def test_importing_the_package_stays_cheap():
    # `authsome get` imports this package: no regex engine, JSON, typing or pathlib at import time.
    import subprocess
    import sys

    code = (
        "import sys; before = set(sys.modules); import authsome.providers; "
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60
    ).stdout.split()
    assert "authsome.providers.registry" in loaded
    for heavy in ("re", "json", "typing", "enum", "dataclasses", "pathlib", "httpx", "asyncio"):
        assert heavy not in loaded, heavy


def test_bundled_files_ship_as_package_data():
    from importlib.resources import files

    names = {p.name for p in files("authsome.providers").joinpath("bundled").iterdir()}
    assert "openai.json" in names and len(names) >= 60

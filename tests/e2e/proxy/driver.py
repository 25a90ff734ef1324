"""Runs inside a private network + mount namespace (see conftest.py).

Starts the stand-in upstream on 127.0.0.1:443/:80 (test host names resolve
there through the bind-mounted /etc/hosts), then ``run_with_proxy`` with the
child command from the config, and writes the audit events and exit status to
the config's ``result`` path. The child's stdout/stderr pass through.
"""

from __future__ import annotations

import json
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])

from upstream import start_in_thread as start_upstream  # noqa: E402

from authsome.providers.parse import parse_provider  # noqa: E402
from authsome.proxy.routes import Route  # noqa: E402
from authsome.proxy.runner import run_with_proxy  # noqa: E402


def make_route(spec: dict) -> Route:
    provider = parse_provider(spec["provider"], source="custom")
    secrets = spec["secrets"]
    return Route(
        provider.name,
        "default",
        provider.resolved_hosts(),
        lambda: provider.injection(secrets),
        env_vars=list(provider.export_env().values()),
    )


def main() -> None:
    config = json.load(open(sys.argv[1]))
    start_upstream(config)
    events: list[dict] = []
    routes = [make_route(spec) for spec in config["routes"]]
    status = run_with_proxy(config["cmd"], routes, audit=events.append, extra_ca_bundle=config["extra_ca_bundle"])
    with open(config["result"], "w") as f:
        json.dump({"status": status, "audit": events}, f)


if __name__ == "__main__":
    main()

"""The credential-injection proxy behind ``authsome run`` (DESIGN.md section 6).

Public surface: ``Route`` (routes.py) and ``run_with_proxy`` (runner.py).
Nothing heavy is imported here: the CLI imports this package only for ``run``.
"""

from __future__ import annotations

__all__ = ["PLACEHOLDER", "Route", "run_with_proxy"]


def __getattr__(name: str):
    if name in ("Route", "PLACEHOLDER"):
        from authsome.proxy import routes

        return getattr(routes, name)
    if name == "run_with_proxy":
        from authsome.proxy.runner import run_with_proxy

        return run_with_proxy
    raise AttributeError(name)

"""``authsome run --isolate``: the child in a bubblewrap sandbox whose only way out is the proxy.

Public surface (imported lazily: nothing here loads the proxy):
``run_isolated`` (runner.py), ``probe`` (probe.py, for ``doctor``) and
``check_target`` (egress.py, the isolated egress policy).
"""

from __future__ import annotations

__all__ = ["check_target", "probe", "run_isolated"]


def __getattr__(name: str):
    if name == "run_isolated":
        from authsome.sandbox.runner import run_isolated

        return run_isolated
    if name == "probe":
        from authsome.sandbox.availability import probe

        return probe
    if name == "check_target":
        from authsome.sandbox.egress import check_target

        return check_target
    raise AttributeError(name)

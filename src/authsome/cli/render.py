"""Human renderings of list/get/log results (kept import-light for the fast paths)."""

from __future__ import annotations

from authsome.cli.output import table


def render_list(rows: list[dict]) -> str:
    if not rows:
        return ""
    body = [
        [r["provider"], r["connection"] or "-", r["status"], r["auth_type"], "*" if r["is_default"] else ""]
        for r in rows
    ]
    return table(body, ["PROVIDER", "CONNECTION", "STATUS", "TYPE", "DEFAULT"])


def render_fields(info: dict) -> str:
    lines = []
    for key, value in info.items():
        if isinstance(value, list):
            value = " ".join(value) or "-"
        elif isinstance(value, bool):
            value = "true" if value else "false"
        elif value is None:
            value = "-"
        lines.append(f"{key}: {value}\n")
    return "".join(lines)


def render_events(events: list[dict]) -> str:
    rows = []
    for e in events:
        where = e.get("host") and f"{e.get('method', '')} {e['host']}{e.get('path', '')} -> {e.get('status', '')}"
        rows.append(
            [
                e.get("time", "-"),
                e.get("event", "-"),
                e.get("provider") or "-",
                e.get("connection") or "-",
                str(e.get("outcome") or "-"),
                where or e.get("detail") or "",
            ]
        )
    return table(rows, ["TIME", "EVENT", "PROVIDER", "CONNECTION", "OUTCOME", "DETAIL"]) if rows else ""

"""HTML for the browser form. No script; every dynamic value is escaped.

Secret values never appear here: the form is always rendered with empty
secret inputs, even after a failed submission. Non-secret values (an account
SID, an email) are kept so the user need not retype them.
"""

from __future__ import annotations

from html import escape

from authsome.secret_input.request import SecretRequest

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#f5f5f7;color:#1d1d1f;margin:0}
main{max-width:34rem;margin:4rem auto;background:#fff;border-radius:12px;padding:2rem 2.25rem;
box-shadow:0 1px 4px rgba(0,0,0,.12)}
h1{font-size:1.35rem;margin:0 0 .25rem}
.conn{color:#555;margin:0 0 1.5rem}
label{display:block;font-weight:600;margin:1rem 0 .35rem}
input[type=password],input[type=text]{width:100%;box-sizing:border-box;font:inherit;font-family:ui-monospace,monospace;
padding:.55rem .6rem;border:1px solid #bbb;border-radius:6px}
.hint{color:#555;font-size:.9rem;margin:.35rem 0 0}
.error{background:#fdecea;border:1px solid #f5c2c0;color:#8a1c14;border-radius:6px;padding:.75rem 1rem;margin:0 0 1rem}
.error p{margin:.2rem 0}
button{margin-top:1.5rem;font:inherit;font-weight:600;padding:.6rem 1.4rem;border:0;border-radius:6px;
background:#1d1d1f;color:#fff;cursor:pointer}
.foot{color:#777;font-size:.8rem;margin-top:1.5rem}
"""


def _page(title: str, body: str) -> bytes:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    ).encode()


def render_form(
    request: SecretRequest,
    csrf_token: str,
    *,
    error: str | None = None,
    hint: str | None = None,
    kept_values: dict[str, str] | None = None,
) -> bytes:
    """The form. ``kept_values`` may only hold values of non-secret fields."""
    kept = kept_values or {}
    parts = [
        f"<h1>Connect {escape(request.display_name)}</h1>",
        f'<p class="conn">Provider <strong>{escape(request.provider)}</strong>, '
        f"connection <strong>{escape(request.connection)}</strong></p>",
    ]
    if error:
        parts.append('<div class="error" role="alert">')
        parts.append(f'<p id="error-message">{escape(error)}</p>')
        if hint:
            parts.append(f'<p id="error-hint">{escape(hint)}</p>')
        parts.append("</div>")
    parts.append('<form method="post" action="" accept-charset="utf-8" autocomplete="off">')
    parts.append(f'<input type="hidden" name="csrf_token" value="{escape(csrf_token)}">')
    for index, field in enumerate(request.fields):
        field_id = f"field-{index}"
        parts.append(f'<label for="{field_id}">{escape(field.label)}</label>')
        if field.secret:
            parts.append(
                f'<input type="password" id="{field_id}" name="{escape(field.name)}" autocomplete="off" '
                'spellcheck="false" autocapitalize="off" required>'
            )
        else:
            value = escape(kept.get(field.name, ""))
            parts.append(
                f'<input type="text" id="{field_id}" name="{escape(field.name)}" value="{value}" '
                'autocomplete="off" spellcheck="false" autocapitalize="off" required>'
            )
        if field.hint:
            parts.append(f'<p class="hint">{escape(field.hint)}</p>')
    parts.append('<button type="submit">Save</button></form>')
    parts.append(
        '<p class="foot">This page is served by authsome on your own machine and works only once. '
        "The value goes straight to your local authsome vault.</p>"
    )
    return _page(f"authsome: {request.display_name} ({request.connection})", "".join(parts))


def render_done(request: SecretRequest) -> bytes:
    body = (
        f"<h1>{escape(request.display_name)}: received</h1>"
        f'<p id="done">authsome received the {escape(_what(request))} for '
        f"<strong>{escape(request.provider)}</strong> (connection "
        f"<strong>{escape(request.connection)}</strong>).</p>"
        "<p>You can close this tab and return to the terminal.</p>"
    )
    return _page("authsome: received", body)


def _what(request: SecretRequest) -> str:
    if len(request.fields) == 1:
        return request.fields[0].label
    return "credentials"

"""Credential flows: API keys and OAuth 2.0 (PKCE, device code, DCR, refresh, revoke).

Each module is one small unit with one interface. Nothing here imports the
OAuth stack (Authlib, httpx) at module load: those imports happen inside the
functions that talk to a server, so status and metadata reads stay light.
"""

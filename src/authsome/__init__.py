"""authsome: a local-first credential broker for AI agents.

The public library API is small::

    from authsome import Authsome
    client = Authsome()                      # uses $AUTHSOME_HOME or ~/.authsome
    client.list_connections()
    client.get_metadata("openai")
    client.get_secret("openai")              # the API key / access token
    client.auth_headers("openai")            # {"Authorization": "Bearer ..."}
    client.export_env("openai")              # {"OPENAI_API_KEY": "..."}

Nothing heavy is imported at module load.
"""

from authsome.errors import AuthsomeError

__all__ = ["Authsome", "AuthsomeError", "__version__"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy so that `import authsome` stays cheap for the CLI's fast paths.
    if name == "Authsome":
        from authsome.client import Authsome

        return Authsome
    raise AttributeError(name)

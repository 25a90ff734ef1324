from tests.oauth_server.fixtures import oauth_server, oauth_server_process  # noqa: F401
from tests.team.fixtures import bao, prefix, team_cli_factory  # noqa: F401

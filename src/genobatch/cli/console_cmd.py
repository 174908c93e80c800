"""``genobatch console``: open the server's web console, signed in, without typing a key.

The CLI asks the server for a one-time login link with a SigV4-signed
``POST /genobatch/v1/console/login-tokens`` (the same key the CLI signs every request with), then
prints the link and opens it in a browser. The link works once, for two minutes, and gives the
browser a session cookie; the secret key itself never goes into a URL or a browser.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import webbrowser

import click
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from genobatch.cli.client import Client, SigningKey
from genobatch.cli.errors import CliError, ServerUnreachable
from genobatch.cli.native import TIMEOUT_S, error_from_response

LOGIN_TOKENS_PATH = "/genobatch/v1/console/login-tokens"


def request_login_url(endpoint: str, region: str, key: SigningKey) -> str:
    """A one-time console login URL from the server at ``endpoint``, asked for with a signed POST."""
    url = endpoint.rstrip("/") + LOGIN_TOKENS_PATH
    signed = AWSRequest(method="POST", url=url, data=b"", headers={"Accept": "application/json"})
    SigV4Auth(Credentials(key.access_key_id, key.secret_access_key), "batch", region).add_auth(signed)
    request = urllib.request.Request(url, data=b"", headers=dict(signed.headers.items()), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            document = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise error_from_response(exc) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, OSError):
            raise ServerUnreachable(endpoint) from None
        raise CliError(f"cannot reach {endpoint}: {exc.reason}") from None
    except ValueError:
        raise CliError(f"the server at {endpoint} sent a response that is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("loginUrl"), str):
        raise CliError(f"the server at {endpoint} does not serve the console (no login link in its answer)")
    return document["loginUrl"]


@click.command()
@click.option("--no-browser", is_flag=True, help="Only print the link; do not open a browser.")
@click.pass_obj
def console(client: Client, no_browser: bool) -> None:
    """Open the web console, signed in (a one-time link, valid two minutes)."""
    url = request_login_url(client.endpoint, client.region, client.key)
    click.echo(f"Console: {url}")
    click.echo("The link signs one browser in once and expires in two minutes.", err=True)
    if not no_browser:
        webbrowser.open(url)


COMMANDS = [console]

"""``genobatch console``: open the server's web console, signed in, without typing a key.

The CLI asks the server for a one-time login link with a SigV4-signed
``POST /genobatch/v1/console/login-tokens`` (the same key the CLI signs every request with), then
prints the link and opens it in a browser. The link works once, for two minutes, and gives the
browser a session cookie; the secret key itself never goes into a URL or a browser.
"""

from __future__ import annotations

import webbrowser

import click

from genobatch.cli.client import Client, SigningKey
from genobatch.cli.errors import CliError
from genobatch.cli.native import signed_request

LOGIN_TOKENS_PATH = "/genobatch/v1/console/login-tokens"


def request_login_url(endpoint: str, region: str, key: SigningKey) -> str:
    """A one-time console login URL from the server at ``endpoint``, asked for with a signed POST."""
    document = signed_request("POST", endpoint, LOGIN_TOKENS_PATH, {}, region, key)
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

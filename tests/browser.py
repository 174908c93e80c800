"""Headless Chromium for tests: load a local page with no network and collect its console output."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")


def chromium(page: Path, profile: Path, window_size: tuple[int, int] | None = None) -> tuple[str, list[str]]:
    """The DOM after load and scripts, and the console lines Chromium logged, with no network at all.

    ``window_size`` (width, height in CSS pixels) sets the viewport layout is done for."""
    result = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            *([f"--window-size={window_size[0]},{window_size[1]}"] if window_size else []),
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # Chromium logs every console message (log, error, CSP violation, uncaught exception) as CONSOLE.
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    return result.stdout, console


needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (Debian: apt-get install -y chromium)"
)

"""``assay ui`` as a user starts it, on the test cluster: a subprocess on a free port, its printed URL, and an
HTTP client holding the token's cookie (shared by the console's HTTP and browser tests)."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx

URL_LINE = re.compile(r"(http://127\.0\.0\.1:\d+)/\?token=(\S+)")
STARTUP_SECONDS = 60


@dataclass
class Console:
    base: str  # http://127.0.0.1:PORT
    url: str  # the printed URL, with its token
    http: httpx.Client  # already holds the cookie the token sets


@contextmanager
def running_console(kubeconfig: Path, namespace: str, *extra: str) -> Iterator[Console]:
    assay = Path(sys.executable).with_name("assay")
    process = subprocess.Popen(
        [str(assay), "ui", "--port", "0", "--kubeconfig", str(kubeconfig), "-n", namespace, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        found: list[re.Match[str]] = []
        seen: list[str] = []

        def read_url() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                seen.append(line)
                match = URL_LINE.search(line)
                if match:
                    found.append(match)
                    return

        reader = threading.Thread(target=read_url, daemon=True)
        reader.start()
        reader.join(STARTUP_SECONDS)
        assert found, f"assay ui printed no URL within {STARTUP_SECONDS}s: {''.join(seen)}"
        base, token = found[0].group(1), found[0].group(2)
        url = f"{base}/?token={token}"
        with httpx.Client(base_url=base, timeout=30) as http:
            assert http.get(url).status_code == 303  # sets the cookie
            yield Console(base=base, url=url, http=http)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

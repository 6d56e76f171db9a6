"""Debug mode: a password-protected Jupyter server, the handler run, and the task kept alive until stopped."""

from __future__ import annotations

import http.cookiejar
import signal
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from assay.contract import Step, TaskEnvironment, TaskResult, parse_termination_message

from .conftest import Digits, start_runner, task_env

pytest.importorskip("jupyter_server")
pytestmark = pytest.mark.timeout(300)

PASSWORD = "correct-horse-battery-staple-1234"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(condition: object, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_debug_server_needs_the_password_and_the_task_stays_up(digits: Digits, tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **task_env(digits, tmp_path, debug=True, debug_port=port),
        "ASSAY_DEBUG_PASSWORD": PASSWORD,
        "ASSAY_DEBUG_BIND": "127.0.0.1",
    }
    log = tmp_path / "debug.log"
    process = start_runner(env, log)
    try:
        _wait_for(lambda: _listening(port), "the debug server")
        base = f"http://127.0.0.1:{port}"
        with pytest.raises(urllib.error.HTTPError) as anonymous:
            urllib.request.urlopen(f"{base}/api/contents", timeout=10)
        assert anonymous.value.code in (401, 403)

        jar = http.cookiejar.CookieJar()
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        browser.open(f"{base}/login", timeout=10).read()
        xsrf = next(cookie.value for cookie in jar if cookie.name == "_xsrf")

        def login(password: str) -> int:
            form = urllib.parse.urlencode({"password": password, "_xsrf": xsrf}).encode()
            try:
                browser.open(f"{base}/login?next=%2Fapi%2Fcontents", data=form, timeout=10).read()
            except urllib.error.HTTPError as exc:
                return exc.code
            return 200

        assert login("wrong password") == 401
        assert login(PASSWORD) == 200
        assert browser.open(f"{base}/api/contents", timeout=10).status == 200

        # The handler ran to its end and reported, yet the task is still up for the user.
        message_path = Path(env["ASSAY_TERMINATION_MESSAGE_PATH"])
        _wait_for(message_path.exists, "the termination message")
        assert isinstance(parse_termination_message(message_path.read_text()), TaskResult)
        _wait_for(lambda: "stays up on port" in log.read_text(), "the keep-alive log line")
        time.sleep(1)
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)  # what the kubelet sends when the pod is deleted or released
        assert process.wait(timeout=60) == 0
        assert not _listening(port)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert PASSWORD not in log.read_text()


SPY_HANDLER = """
import os, subprocess, sys

SEEN = {"import": os.environ.get("ASSAY_DEBUG_PASSWORD")}


class Spy:
    def predict(self, batch):
        child = [sys.executable, "-c", "import os; print(os.environ.get('ASSAY_DEBUG_PASSWORD'))"]
        SEEN["predict"] = os.environ.get("ASSAY_DEBUG_PASSWORD")
        SEEN["child"] = subprocess.run(child, capture_output=True, text=True, check=True).stdout.strip()
        return [0 for _ in batch]

    def evaluate(self, rows):
        list(rows)
        return {name: str(value) for name, value in SEEN.items()}
"""


def test_the_handler_never_sees_the_debug_password(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "spy.py").write_text(SPY_HANDLER)
    (tmp_path / "data.jsonl").write_text('{"x": 1}\n')
    port = _free_port()
    env = {
        **TaskEnvironment(
            step=Step.ALL,
            model_uri=str(tmp_path / "model"),
            handler="spy:Spy",
            dataset_uri=str(tmp_path / "data.jsonl"),
            termination_message_path=str(tmp_path / "termination-log"),
            debug=True,
            debug_port=port,
        ).to_env(),
        "ASSAY_DEBUG_PASSWORD": PASSWORD,
        "ASSAY_DEBUG_BIND": "127.0.0.1",
    }
    process = start_runner(env, tmp_path / "spy.log")
    try:
        message_path = Path(env["ASSAY_TERMINATION_MESSAGE_PATH"])
        _wait_for(message_path.exists, "the termination message")
        result = parse_termination_message(message_path.read_text())
        assert isinstance(result, TaskResult), (tmp_path / "spy.log").read_text()
        assert result.summary == {"import": "None", "predict": "None", "child": "None"}
        _wait_for(lambda: _listening(port), "the debug server")  # debug mode itself still got the password
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)

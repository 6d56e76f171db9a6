"""Debug mode: a password-protected Jupyter server, the handler run, and the final step's task kept alive
until stopped; the password read from a file and in no process's environment; earlier steps end after
their work."""

from __future__ import annotations

import http.cookiejar
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from assay.contract import Step, TaskEnvironment, TaskResult, parse_termination_message

from .conftest import Digits, finish, start_runner, task_env

pytest.importorskip("jupyter_server")
pytestmark = pytest.mark.timeout(300)

PASSWORD = "correct-horse-battery-staple-1234"


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a runner left running by a failed test as the kubelet would (SIGTERM), so that it stops its
    Jupyter server too; kill it only if it does not end."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _password_file(tmp_path: Path) -> str:
    """The password where a pod has its Secret volume's file."""
    path = tmp_path / "debug-password"
    path.write_text(PASSWORD)
    path.chmod(0o600)
    return str(path)


def _environments_holding(secret: str) -> list[str]:
    """Every process on this machine whose environment holds ``secret`` (those this user may read: the
    runner's, the Jupyter server's and the handler's children among them)."""
    holding = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if secret.encode() in environ.read_bytes():
                holding.append(str(environ))
        except OSError:  # gone meanwhile, or another user's
            continue
    return holding


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
        **task_env(
            digits, tmp_path, debug=True, debug_port=port, debug_password_file=_password_file(tmp_path)
        ),
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
        _stop(process)
    assert PASSWORD not in log.read_text()


SPY_HANDLER = """
import os, subprocess, sys
from pathlib import Path

# As any code in the pod may: the file is the one place the password is.
PASSWORD = Path(os.environ["ASSAY_DEBUG_PASSWORD_FILE"]).read_text()


def holds(text):
    return str(PASSWORD in text)


SEEN = {"import": holds(repr(dict(os.environ)))}


class Spy:
    def predict(self, batch):
        SEEN["environ"] = holds(repr(dict(os.environ)))
        # What the kernel keeps of the runner process's environment at its start, whatever it did since.
        SEEN["proc"] = holds(Path("/proc/self/environ").read_bytes().decode(errors="replace"))
        child = [sys.executable, "-c", "import os; print(repr(dict(os.environ)))"]
        SEEN["child"] = holds(subprocess.run(child, capture_output=True, text=True, check=True).stdout)
        return [0 for _ in batch]

    def evaluate(self, rows):
        list(rows)
        return SEEN
"""


MARKER = "a-variable-the-scan-must-find-7d41"


def test_the_debug_password_is_in_no_environment(tmp_path: Path) -> None:
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
            debug_password_file=_password_file(tmp_path),
        ).to_env(),
        "ASSAY_DEBUG_BIND": "127.0.0.1",
        "SPY_MARKER": MARKER,
    }
    process = start_runner(env, tmp_path / "spy.log")
    try:
        message_path = Path(env["ASSAY_TERMINATION_MESSAGE_PATH"])
        _wait_for(message_path.exists, "the termination message")
        result = parse_termination_message(message_path.read_text())
        assert isinstance(result, TaskResult), (tmp_path / "spy.log").read_text()
        _wait_for(lambda: _listening(port), "the debug server")  # debug mode itself still got the password
        assert result.summary == {"import": "False", "environ": "False", "proc": "False", "child": "False"}
        # Nor in the runner's /proc/<pid>/environ seen from outside, nor in the Jupyter server's: the scan
        # that finds none of the password does find a variable the runner was started with.
        assert f"/proc/{process.pid}/environ" in _environments_holding(MARKER)
        assert _environments_holding(PASSWORD) == []
    finally:
        _stop(process)


WAITS_FOR_THE_DEBUG_SERVER = """
import os, socket, time


def debug_server_listening():
    port = int(os.environ["ASSAY_DEBUG_PORT"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


class Waiter:
    def predict(self, batch):
        return [debug_server_listening() for _ in batch]

    def evaluate(self, rows):
        predictions = [prediction for _, prediction in rows]
        return {"records": len(predictions), "predict saw the server": all(predictions)}
"""


def test_earlier_steps_end_after_their_work_and_the_final_step_stays_up(tmp_path: Path) -> None:
    """Two tasks in debug mode: each predict shard has its debug server while it works, then exits 0 (its
    Job must complete for the evaluate step to start); the evaluate task stays up until it is stopped."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "waiter.py").write_text(WAITS_FOR_THE_DEBUG_SERVER)
    (tmp_path / "data.jsonl").write_text("".join(f'{{"x": {i}}}\n' for i in range(4)))
    password_file = _password_file(tmp_path)

    def env_of(step: Step, index: int, port: int) -> dict[str, str]:
        environment = TaskEnvironment(
            step=step,
            model_uri=str(tmp_path / "model"),
            handler="waiter:Waiter",
            dataset_uri=str(tmp_path / "data.jsonl"),
            task_index=index,
            task_count=2,
            output_uri=str(tmp_path / "output"),
            termination_message_path=str(tmp_path / f"{step.value}-{index}.termination-log"),
            debug=True,
            debug_port=port,
            debug_password_file=password_file,
        ).to_env()
        return {**environment, "ASSAY_TASK_INDEX": str(index), "ASSAY_DEBUG_BIND": "127.0.0.1"}

    for index in range(2):
        port = _free_port()
        env = env_of(Step.PREDICT, index, port)
        log = tmp_path / f"predict-{index}.log"
        process = start_runner(env, log)
        try:
            finished = finish(process, env, log, timeout=180)
        finally:
            _stop(process)
        assert finished.code == 0, finished.log
        assert "not the final step, so the task ends" in finished.log
        assert not _listening(port)  # the debug server went with it

    port = _free_port()
    env = env_of(Step.EVALUATE, 0, port)
    log = tmp_path / "evaluate.log"
    process = start_runner(env, log)
    try:
        _wait_for(lambda: "stays up on port" in log.read_text(), "the keep-alive log line")
        assert process.poll() is None
        _wait_for(lambda: _listening(port), "the debug server of the evaluate task")
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        finished = finish(process, env, log, timeout=60)
    finally:
        _stop(process)
    assert finished.code == 0, finished.log
    assert finished.summary == {"records": 4, "predict saw the server": True}

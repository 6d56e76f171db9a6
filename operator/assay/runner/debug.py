"""Debug mode: a password-protected Jupyter server next to the handler, and a pod that may stay up after it.

The password is read from the file ``ASSAY_DEBUG_PASSWORD_FILE`` names (the operator mounts it from a Secret);
it is in no environment variable, which would stay readable in ``/proc/<pid>/environ`` for the life of the
process. Only its argon2 hash is handed to Jupyter, through a private config file, never on a command line;
the password is never logged. Without a password (no file, an unreadable one, or one shorter than
``MIN_DEBUG_PASSWORD_LENGTH``) the runner refuses to start (``ExitCode.DEBUG_PASSWORD_MISSING``): an open
notebook server in a GPU pod would be a remote shell for anyone on the cluster network.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from assay.contract import ENV_DEBUG_PASSWORD_FILE, MIN_DEBUG_PASSWORD_LENGTH, ExitCode
from assay.runner.failures import TaskFailed

log = logging.getLogger("assay.runner")

# Address the notebook server listens on; a runner-only setting (tests bind 127.0.0.1).
ENV_DEBUG_BIND = "ASSAY_DEBUG_BIND"
DEFAULT_DEBUG_BIND = "0.0.0.0"


class DebugServer:
    """The Jupyter server process and its private configuration directory."""

    def __init__(self, process: subprocess.Popen[bytes], home: Path, port: int) -> None:
        self.process, self.home, self.port = process, home, port

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.home, ignore_errors=True)


def _password_missing(got: str) -> TaskFailed:
    return TaskFailed(
        ExitCode.DEBUG_PASSWORD_MISSING,
        f"debug mode needs a password of at least {MIN_DEBUG_PASSWORD_LENGTH} characters in the file "
        f"{ENV_DEBUG_PASSWORD_FILE} names (the operator mounts it from the debug Secret), got {got}; "
        "refusing to start a notebook server without one",
    )


def read_password(path: str | None) -> str:
    """The debug password in the file at ``path``, exactly as stored (the Secret's bytes, as admission
    measured them); raises :class:`TaskFailed` when there is none or it is too short."""
    if not path:
        raise _password_missing(f"no {ENV_DEBUG_PASSWORD_FILE}")
    try:
        password = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        # The operator mounts the Secret as optional, so a Secret or key gone since admission ends up here,
        # named, rather than as a pod that never starts.
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise _password_missing(f"{path} unreadable ({why})") from exc
    if len(password) < MIN_DEBUG_PASSWORD_LENGTH:
        # Admission refuses such a Secret; this catches one edited after the Evaluation was admitted.
        raise _password_missing(f"{len(password)} characters in {path}" if password else f"{path} empty")
    return password


def start_debug_server(port: int, password_file: str | None, root_dir: Path) -> DebugServer:
    """Start ``jupyter_server`` on ``port`` behind the password in ``password_file``; raises
    :class:`TaskFailed` if it cannot."""
    password = read_password(password_file)
    try:
        from jupyter_server.auth.security import passwd
    except ImportError as exc:
        raise TaskFailed(
            ExitCode.INVALID_CONFIG,
            "debug mode needs jupyter-server in the image: pip install 'assay[debug]'",
        ) from exc
    home = Path(tempfile.mkdtemp(prefix="assay-debug-"))  # mode 0700: only this user reads the hash
    config = {
        "ServerApp": {
            "ip": os.environ.get(ENV_DEBUG_BIND) or DEFAULT_DEBUG_BIND,
            "port": port,
            "port_retries": 0,
            "open_browser": False,
            "allow_root": True,
            "root_dir": str(root_dir),
        },
        "IdentityProvider": {"token": ""},
        "PasswordIdentityProvider": {
            "hashed_password": passwd(password),
            "password_required": True,
            "allow_password_change": False,
        },
    }
    (home / "jupyter_server_config.json").write_text(json.dumps(config))
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_DATA_DIR": str(home),
    }
    process = subprocess.Popen([sys.executable, "-m", "jupyter_server"], env=env, cwd=root_dir)
    log.info("debug: Jupyter server starting on port %d (password from %s)", port, password_file)
    return DebugServer(process, home, port)


def wait_until_stopped(server: DebugServer) -> None:
    """Keep the task alive for the user until the pod is stopped (SIGTERM or SIGINT).

    Only for the final step's task (:attr:`assay.contract.TaskEnvironment.stays_up_after_work`): a predict
    task that waited would keep its Job from completing, and the evaluate step would never start."""
    stopped = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("debug: received %s, stopping", signal.Signals(signum).name)
        stopped.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("debug: the handler has finished; the pod stays up on port %d until it is stopped", server.port)
    while not stopped.wait(1.0):
        if server.process.poll() is not None:
            log.warning(
                "debug: the Jupyter server exited with %s; still waiting to be stopped",
                server.process.returncode,
            )
            stopped.wait()
    server.stop()

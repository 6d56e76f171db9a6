"""Whether the Kubernetes API answers, told once per outage instead of once per retry.

During a control-plane outage every client in the operator retries on its own: kopf's watches and requests
log an ERROR per attempt, the controller's reconciles a WARNING per retry. A 24-second apiserver restart
printed 43 ERROR lines that all said the same thing. Here the story is told once:

* :class:`Reachability` knows whether the API answers. The health server's probe (``assay.controller.health``)
  reports each answer and each failure; it logs one WARNING when the API stops answering and one INFO when it
  answers again (with how long it was away and how many retries were folded meanwhile).
* :class:`RetryNoiseFilter`, on the log handlers, turns every record about a request that failed because the
  API is away (kopf's ``Request attempt ... failed; will retry``, a reconcile retried after a connection
  error, a 5xx or 429) into DEBUG, counts it, and asks for a probe at once, so that the WARNING does not wait
  for the probe's next period.
* :class:`EndlessBackoffs` makes kopf retry its requests for as long as an outage lasts (its default gives up
  after 9 attempts, about a minute, and a peering keep-alive that gives up stops the operator).

Nothing here does I/O: the probe and the clock come from outside.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import aiohttp

logger = logging.getLogger("assay.operator.api")

# HTTP statuses that say "the API (or its storage) is not answering now", not "your request is wrong".
UNAVAILABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# kopf's per-attempt line (kopf/_cogs/clients/api.py): "Request attempt #3 failed; will retry: GET . -> E(.)"
KOPF_RETRY = re.compile(r"^Request attempt #\d+(/\d+)? failed; will retry: ")
# ... and the errors E it names when the API did not answer. kopf also retries 403 (an upgrade may answer
# that for a moment), which stays visible: a missing RBAC rule must not be retried silently for ever.
KOPF_UNAVAILABLE_ERRORS = frozenset(
    {
        "ClientConnectorError",
        "ClientConnectorSSLError",
        "ClientOSError",
        "ServerDisconnectedError",
        "ServerTimeoutError",
        "ConnectionTimeoutError",
        "SocketTimeoutError",
        "ClientPayloadError",
        "TimeoutError",
        "APIServerError",
        "APITooManyRequestsError",
    }
)


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the API did not answer (connection, timeout, 5xx, 429), not a refusal."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return False  # a certificate the client does not trust is no outage
    if isinstance(
        exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError | ConnectionError | TimeoutError
    ):
        return True  # refused, reset, timed out (asyncio's too), disconnected, cut mid-answer
    status = getattr(exc, "status", None)  # kubernetes_asyncio's ApiException, kopf's APIError
    return isinstance(status, int) and status in UNAVAILABLE_STATUSES


def describe(exc: BaseException) -> str:
    """One line for the log: ``HTTP 500 Internal Server Error`` or ``ClientConnectorError: Cannot ...``."""
    status, reason = getattr(exc, "status", None), getattr(exc, "reason", None)
    if isinstance(status, int) and reason:
        return f"HTTP {status} {reason}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def is_retry_noise(record: logging.LogRecord) -> bool:
    """Whether a record is about a request that failed only because the API did not answer."""
    if record.levelno < logging.WARNING:
        return False
    message = record.getMessage()
    if KOPF_RETRY.match(message):
        return message.rpartition(" -> ")[2].partition("(")[0] in KOPF_UNAVAILABLE_ERRORS
    exceptions = [arg for arg in _args(record) if isinstance(arg, BaseException)]
    if record.exc_info and record.exc_info[1] is not None:
        exceptions.append(record.exc_info[1])
    return any(is_unavailable(exc) for exc in exceptions)


def _args(record: logging.LogRecord) -> tuple[object, ...]:
    args = record.args
    if isinstance(args, tuple):
        return args
    return tuple(args.values()) if isinstance(args, dict) else ()


@dataclass
class Outage:
    since: float
    cause: str
    folded: int = 0


class Reachability:
    """Whether the API answers now; logs one line when that changes.

    ``on_suspect`` is called when a failure is noticed while the API was thought reachable (the health
    server probes at once); ``clock`` returns seconds (monotonic).
    """

    def __init__(
        self, *, on_suspect: Callable[[], None] | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.outage: Outage | None = None
        self.outages = 0
        self.on_suspect = on_suspect
        self._clock = clock
        self._retries_before = 0  # retries seen since the last answer, before an outage was declared

    @property
    def reachable(self) -> bool:
        return self.outage is None

    def answered(self) -> None:
        """The API answered a probe: an outage, if any, is over."""
        self._retries_before = 0
        if self.outage is None:
            return
        outage, self.outage = self.outage, None
        logger.info(
            "Kubernetes API reachable again after %.0f s (%d retries meanwhile, logged at DEBUG)",
            self._clock() - outage.since,
            outage.folded,
        )

    def failed(self, cause: str) -> None:
        """A probe found the API away: the first failure starts an outage, the next ones change nothing."""
        if self.outage is not None:
            return
        self.outage = Outage(since=self._clock(), cause=cause, folded=self._retries_before)
        self.outages += 1
        logger.warning(
            "Kubernetes API unreachable (%s); retrying until it answers, not ready meanwhile "
            "(each retry logged at DEBUG)",
            cause,
        )

    def retried(self) -> None:
        """Some client retried a request the API did not answer."""
        if self.outage is not None:
            self.outage.folded += 1
            return
        self._retries_before += 1
        if self.on_suspect is not None:
            self.on_suspect()


class RetryNoiseFilter(logging.Filter):
    """On a log handler: records about requests the unreachable API did not answer become DEBUG.

    They are dropped unless ``verbose`` (the handler would otherwise print them, whatever their new level:
    a logger checks the level before the handler's filters run).
    """

    def __init__(self, reachability: Reachability, *, verbose: bool = False) -> None:
        super().__init__()
        self.reachability = reachability
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == logger.name:
            return True
        if not is_retry_noise(record):
            return True
        self.reachability.retried()
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        record.exc_info, record.exc_text = None, None  # a traceback per retry is the noise itself
        return self.verbose


class EndlessBackoffs:
    """kopf's ``settings.networking.error_backoffs`` that never run out: 1, 2, 4, ... then ``longest`` s.

    kopf retries a failed request once per item and gives up when the items run out; an iterable without a
    length (this one) is retried for ever. Re-iterable: kopf starts over for every request.
    """

    def __init__(self, first: float = 1.0, longest: float = 10.0) -> None:
        self.first, self.longest = first, longest

    def __iter__(self) -> Iterator[float]:
        delay = self.first
        while True:
            yield delay
            delay = min(delay * 2, self.longest)

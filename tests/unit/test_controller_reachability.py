"""One log line when the Kubernetes API goes away and one when it is back, whatever retries in between."""

from __future__ import annotations

import asyncio
import itertools
import logging

import aiohttp
import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from assay.controller.reachability import (
    EndlessBackoffs,
    Reachability,
    RetryNoiseFilter,
    describe,
    is_retry_noise,
    is_unavailable,
)

API_LOGGER = "assay.operator.api"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


REFUSED = "ClientConnectorError(ConnectionKey(host='127.0.0.1', port=6443), ConnectionRefusedError(111))"


def kopf_retry(attempt: int, error: str = REFUSED) -> logging.LogRecord:
    """What kopf logs per failed attempt (kopf/_cogs/clients/api.py), here with endless backoffs."""
    message = (
        f"Request attempt #{attempt} failed; will retry: GET https://127.0.0.1:6443/api/v1/pods -> {error}"
    )
    return logging.LogRecord("kopf._cogs.clients.watching", logging.ERROR, __file__, 1, message, None, None)


def reconcile_retry(exc: BaseException) -> logging.LogRecord:
    """What the controller's coalescer logs when a reconcile failed and is retried."""
    args = ("evaluation", ("ns", "e1"), type(exc).__name__, exc, 4.0)
    return logging.LogRecord(
        "assay.controller.coalescer",
        logging.WARNING,
        __file__,
        1,
        "%s %s failed (%s: %s); retrying in %.1f s",
        args,
        None,
    )


def handler_traceback(exc: BaseException) -> logging.LogRecord:
    return logging.LogRecord(
        "kopf.objects",
        logging.ERROR,
        __file__,
        1,
        "Handler 'pod_changed' failed with an exception. Will retry.",
        None,
        (type(exc), exc, None),
    )


def refused() -> ApiException:
    return ApiException(status=422, reason="Unprocessable Entity")


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),
        aiohttp.ServerDisconnectedError(),
        ApiException(status=503, reason="Service Unavailable"),
        ApiException(status=500, reason="etcdserver: request timed out"),
        ApiException(status=429, reason="Too Many Requests"),
    ],
)
def test_an_api_that_does_not_answer_is_unavailable(exc: BaseException) -> None:
    assert is_unavailable(exc)
    assert is_retry_noise(reconcile_retry(exc))
    assert is_retry_noise(handler_traceback(exc))


@pytest.mark.parametrize(
    "exc", [refused(), ApiException(status=403), ApiException(status=404), ValueError("bad spec")]
)
def test_an_answer_that_refuses_is_not_unavailability(exc: BaseException) -> None:
    assert not is_unavailable(exc)
    assert not is_retry_noise(reconcile_retry(exc))
    assert not is_retry_noise(handler_traceback(exc))


def test_kopfs_retry_lines_are_noise_and_its_other_errors_are_not() -> None:
    assert is_retry_noise(kopf_retry(1))
    assert is_retry_noise(kopf_retry(57))
    assert is_retry_noise(kopf_retry(2, "APIServerError('etcdserver: request timed out', status=500)"))
    assert is_retry_noise(kopf_retry(3, "ServerDisconnectedError('Server disconnected')"))
    # A 403 is retried by kopf too, but it is an answer (a missing RBAC rule): it stays an ERROR.
    assert not is_retry_noise(kopf_retry(1, "APIForbiddenError('pods is forbidden', status=403)"))
    escalated = logging.LogRecord(
        "kopf.objects",
        logging.ERROR,
        __file__,
        1,
        "Request attempt #9/9 failed; escalating: PATCH https://x/apis/batch/v1/jobs/j -> APIError('bad')",
        None,
        None,
    )
    assert not is_retry_noise(escalated)
    debug = kopf_retry(1)
    debug.levelno = logging.DEBUG
    assert not is_retry_noise(debug)


def test_one_warning_per_outage_and_one_info_per_recovery(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    reachability = Reachability(clock=clock)
    noise = RetryNoiseFilter(reachability)
    caplog.set_level(logging.DEBUG, logger=API_LOGGER)

    reachability.answered()  # all is well: nothing to say
    assert reachability.reachable and not caplog.records

    # A 3-minute outage: kopf retries every few seconds on 5 watches, the controller on 12 Evaluations,
    # the probe fails every 5 s.
    for second in range(180):
        clock.now += 1
        retries = [kopf_retry(second + 1) for _ in range(5)]
        retries += [reconcile_retry(ConnectionRefusedError(111, "refused")) for _ in range(12)]
        assert not any(noise.filter(record) for record in retries)
        assert all(record.levelno == logging.DEBUG for record in retries)
        if second % 5 == 0:
            reachability.failed("ClientConnectorError: Cannot connect to host 127.0.0.1:6443")
    assert not reachability.reachable
    clock.now += 2
    reachability.answered()
    reachability.answered()

    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == API_LOGGER]
    assert lines == [
        (
            "WARNING",
            "Kubernetes API unreachable (ClientConnectorError: Cannot connect to host 127.0.0.1:6443); "
            "retrying until it answers, not ready meanwhile (each retry logged at DEBUG)",
        ),
        # Declared at the first probe (t=1001), over at t=1182; 17 retries a second for 180 s.
        ("INFO", "Kubernetes API reachable again after 181 s (3060 retries meanwhile, logged at DEBUG)"),
    ]
    assert reachability.reachable and reachability.outages == 1

    # A second outage gets its own pair of lines.
    reachability.failed("ApiException: (500)")
    reachability.answered()
    assert [r.levelname for r in caplog.records if r.name == API_LOGGER] == ["WARNING", "INFO"] * 2
    assert reachability.outages == 2


def test_a_retry_while_the_api_seems_fine_asks_for_a_probe_and_is_counted() -> None:
    asked: list[bool] = []
    reachability = Reachability(on_suspect=lambda: asked.append(True))
    noise = RetryNoiseFilter(reachability)
    noise.filter(kopf_retry(1))
    noise.filter(kopf_retry(2))
    assert asked == [True, True]
    reachability.failed("refused")
    noise.filter(kopf_retry(3))
    assert asked == [True, True]  # the outage is known: no more probes asked for
    assert reachability.outage is not None and reachability.outage.folded == 3


def test_a_transient_retry_the_probe_does_not_confirm_is_no_outage(caplog: pytest.LogCaptureFixture) -> None:
    reachability = Reachability()
    RetryNoiseFilter(reachability).filter(kopf_retry(1))
    reachability.answered()
    reachability.failed("refused")
    assert reachability.outage is not None and reachability.outage.folded == 0  # the old retry is not counted
    assert [r.levelname for r in caplog.records if r.name == API_LOGGER] == ["WARNING"]


def test_other_records_pass_untouched_and_verbose_keeps_the_folded_ones() -> None:
    reachability = Reachability()
    quiet, verbose = RetryNoiseFilter(reachability), RetryNoiseFilter(reachability, verbose=True)
    other = reconcile_retry(refused())
    assert quiet.filter(other) and other.levelno == logging.WARNING
    folded = handler_traceback(ConnectionResetError())
    assert verbose.filter(folded)
    assert (folded.levelno, folded.levelname, folded.exc_info) == (logging.DEBUG, "DEBUG", None)
    own = logging.LogRecord(API_LOGGER, logging.WARNING, __file__, 1, "unreachable", None, None)
    assert quiet.filter(own) and own.levelno == logging.WARNING


def test_endless_backoffs_never_run_out_and_start_over_for_each_request() -> None:
    backoffs = EndlessBackoffs(first=1, longest=10)
    assert not hasattr(backoffs, "__len__")  # kopf retries for ever only without a length
    assert list(itertools.islice(backoffs, 7)) == [1, 2, 4, 8, 10, 10, 10]
    assert list(itertools.islice(backoffs, 3)) == [1, 2, 4]


async def test_backoffs_keep_kopf_retrying_past_its_default_nine_attempts() -> None:
    """kopf's own retry loop, with these backoffs, keeps going (it would give up after 9 by default)."""
    import kopf
    from kopf._cogs.clients import api

    attempts = 0
    thirty = asyncio.Event()

    class Session:
        closed = False

        async def request(self, **_: object) -> None:
            nonlocal attempts
            attempts += 1
            if attempts == 30:
                thirty.set()
            raise aiohttp.ClientConnectionError("refused")

    class Context:
        server = "https://127.0.0.1:1"
        session = Session()

    settings = kopf.OperatorSettings()
    settings.networking.error_backoffs = EndlessBackoffs(first=0.001, longest=0.001)
    task = asyncio.ensure_future(
        api.request("get", "/api", settings=settings, context=Context(), logger=logging.getLogger("t"))
    )
    await asyncio.wait_for(thirty.wait(), timeout=10)
    assert not task.done(), task.exception() if task.done() else "still retrying"
    task.cancel()


async def test_readyz_says_503_with_the_cause_during_an_outage_and_healthz_stays_200() -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from assay.controller.health import health_app

    reachability = Reachability()
    async with TestClient(TestServer(health_app(reachability))) as http:
        assert (await http.get("/readyz")).status == 200
        reachability.failed("ClientConnectorError: refused")
        answer = await http.get("/readyz")
        assert answer.status == 503
        assert await answer.json() == {"api": "unreachable", "cause": "ClientConnectorError: refused"}
        assert (await http.get("/healthz")).status == 200
        reachability.answered()
        assert (await http.get("/readyz")).status == 200


def test_a_local_file_error_or_an_untrusted_certificate_is_not_the_api() -> None:
    assert not is_unavailable(FileNotFoundError(2, "No such file", "/etc/assay/webhook/tls.crt"))
    key = aiohttp.client_reqrep.ConnectionKey("127.0.0.1", 6443, True, True, None, None, None)
    assert not is_unavailable(aiohttp.ClientConnectorCertificateError(key, ValueError("unknown CA")))


def test_an_outage_cause_is_one_line() -> None:
    assert (
        describe(ApiException(status=500, reason="Internal Server Error")) == "HTTP 500 Internal Server Error"
    )
    assert describe(ConnectionRefusedError(111, "Connection refused")) == (
        "ConnectionRefusedError: [Errno 111] Connection refused"
    )
    assert describe(TimeoutError()) == "TimeoutError"
    assert describe(aiohttp.ClientPayloadError("cut\nmid-answer")) == "ClientPayloadError: cut"

"""The Assay SDK: :class:`Client` reads and controls Evaluations and ResourcePools on a cluster.

Synchronous on purpose (notebooks, pipelines, the CLI). Every method returns the typed models of
:mod:`assay.api`; every failure the caller can act on is an :class:`assay.errors.AssayError` with a one-line
message::

    from assay import Client

    client = Client(namespace="team-a")          # kubeconfig as kubectl finds it, or in-cluster
    for evaluation in client.list():
        print(evaluation.metadata.name, evaluation.status.phase if evaluation.status else "")
    done = client.wait("mnist-cnn-v3-on-test", timeout=600)
    print(done.status.results.summary)
"""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import itertools
import json
import os
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast
from urllib.parse import quote as _quote

import yaml

from assay import compare as comparing
from assay import debug_password as debug_password_rules
from assay import facts, results_pod
from assay import results as results_io
from assay.api import (
    EVALUATION_PLURAL,
    EVALUATION_SET_PLURAL,
    GROUP,
    POOL_PLURAL,
    VERSION,
    Evaluation,
    EvaluationSet,
    ResourcePool,
    TaskStatus,
)
from assay.attempts import (
    TaskAttempt,
    attempts_from_pods,
    evaluation_pod_selector,
    select_attempts,
    single_attempt,
)
from assay.contract import pvc_claim
from assay.errors import (
    AlreadyExists,
    AssayError,
    ClusterUnreachable,
    Forbidden,
    Invalid,
    NotFound,
    WaitTimeout,
)
from assay.kubeconfig import DEFAULT_KUBECONFIG, ConfigError, Unsupported
from assay.kubeconfig import load as load_connection
from assay.quote import Quote, quote
from assay.render.names import LABEL_EVALUATION_SET, label_value
from assay.rest import ApiError, RestReader, Unreachable

if TYPE_CHECKING:
    # Imported where first used: the kubernetes client takes 0.3 s to import, and reading (list, get: what
    # the CLI does most) goes through assay.rest whenever the kubeconfig allows (see assay.kubeconfig).
    import urllib3
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

__all__ = [
    "AlreadyExists",
    "AssayError",
    "Client",
    "ClusterUnreachable",
    "Forbidden",
    "Invalid",
    "NotFound",
    "TaskAttempt",
    "WaitTimeout",
]

API_VERSION = f"{GROUP}/{VERSION}"
# The field manager of what the SDK writes: metadata.managedFields then says which tool created an Evaluation.
FIELD_MANAGER = "assay"
IN_CLUSTER_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

T = TypeVar("T")
# `Client.list` shadows the builtin inside the class body, so annotations there use these names.
Evaluations = list[Evaluation]
Pools = list[ResourcePool]
Attempts = list[TaskAttempt]
Tasks = list[TaskStatus]
EvaluationSets = list[EvaluationSet]
Names = list[str]


def _raw(response: object) -> urllib3.BaseHTTPResponse:
    """The undecoded HTTP response a ``_preload_content=False`` call returns."""
    return cast("urllib3.BaseHTTPResponse", response)


def _json_object(data: object) -> dict[str, Any]:
    return cast(dict[str, Any], data)


class FailedRequest(Protocol):
    """A failed API request as both clients report it: :class:`assay.rest.ApiError` and the kubernetes
    client's ``ApiException``."""

    @property
    def status(self) -> int | None: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def body(self) -> str | None: ...


def _status_body(error: FailedRequest) -> dict[str, Any]:
    try:
        body = json.loads(error.body or "")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def translate_api_error(error: FailedRequest, what: str) -> AssayError:
    """A failed request as the one-line error a person can act on. ``what`` names the object or
    collection the request was about (``evaluation 'x' in namespace 'y'``)."""
    body = _status_body(error)
    message = body.get("message") or error.reason or "no details"
    if error.status == 404:
        if body.get("kind") == "Status" and (body.get("details") or {}).get("name"):
            return NotFound(f"{what} not found")
        if body.get("kind") == "Status":
            return NotFound(f"{what} not found: {message}")
        # A plain "404 page not found": the API group itself is unknown.
        return NotFound(
            f"the cluster does not serve {API_VERSION}: install Assay first (kubectl apply -k manifests/)"
        )
    if error.status == 401:
        return Forbidden("the cluster did not accept the credentials (401): log in again or check --context")
    if error.status == 403:
        return Forbidden(f"{message} (ask a cluster admin for an RBAC role that allows it)")
    if error.status == 409:
        return AlreadyExists(message)
    if error.status in (400, 422):
        return Invalid(message)
    return AssayError(f"the API server answered {error.status} {error.reason}: {message}")


class _ImpersonatingPool:
    """The kubernetes client's urllib3 pool, adding kubectl's impersonation headers to every request.

    The kubernetes client has no impersonation setting, and its default headers hold one value per name; the
    API server reads one ``Impersonate-Group`` header per group (it does not split a comma-joined value), so
    the headers are added where urllib3 sends them, one line per group.
    """

    def __init__(self, pool: urllib3.PoolManager, user: str, groups: Sequence[str]) -> None:
        self._pool = pool
        self._headers = [("Impersonate-User", user), *(("Impersonate-Group", group) for group in groups)]

    def request(self, method: str, url: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
        from urllib3 import HTTPHeaderDict

        sent = HTTPHeaderDict(kwargs.pop("headers", None) or {})
        for name, value in self._headers:
            sent.add(name, value)
        return self._pool.request(method, url, headers=sent, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)  # clear(), and whatever else the rest client calls


def _send_impersonation_headers(api_client: k8s.ApiClient, user: str, groups: Sequence[str]) -> None:
    rest_client = api_client.rest_client
    # Duck-typed: the rest client calls only request() and clear() on its pool.
    rest_client.pool_manager = cast(
        "urllib3.PoolManager", _ImpersonatingPool(rest_client.pool_manager, user, groups)
    )


def quote_path(segment: str) -> str:
    """One segment of a URL path: a name with a '/' or '?' must not change the request."""
    return _quote(segment, safe="")


def _kubernetes_api_exception() -> type[ApiException]:
    from kubernetes.client.exceptions import ApiException

    return ApiException


def _urllib3_error() -> type[urllib3.exceptions.HTTPError]:
    """The transport errors of the kubernetes client (urllib3's), imported where a request failed."""
    import urllib3

    return urllib3.exceptions.HTTPError


@dataclasses.dataclass(frozen=True)
class _KubernetesApi:
    """The kubernetes client of a :class:`Client`, and what its configuration loader found."""

    host: str
    namespace: str | None
    api_client: k8s.ApiClient
    custom: k8s.CustomObjectsApi
    core: k8s.CoreV1Api


class Client:
    """Talk to one cluster as one user, in one default namespace.

    ``kubeconfig``/``context`` choose the cluster as kubectl would (``$KUBECONFIG``, then
    ``~/.kube/config``); without any kubeconfig and inside a pod the pod's service account is used.
    ``namespace`` defaults to the context's namespace (in a pod: the pod's), else ``default``.
    ``impersonate`` and ``impersonate_groups`` act as that user and groups, as kubectl's ``--as`` and
    ``--as-group`` do (the credentials' user needs RBAC's ``impersonate`` verb for it).
    """

    def __init__(
        self,
        kubeconfig: str | os.PathLike[str] | None = None,
        context: str | None = None,
        namespace: str | None = None,
        *,
        in_cluster: bool | None = None,
        request_timeout: float = 15.0,
        impersonate: str | None = None,
        impersonate_groups: Sequence[str] = (),
    ) -> None:
        if impersonate_groups and not impersonate:
            # kubectl refuses this too; the API server would answer with a less helpful 500.
            raise Invalid(
                f"--as-group {', '.join(impersonate_groups)} needs --as: impersonate a user to give groups"
            )
        self.request_timeout = request_timeout
        self._impersonation = (impersonate, tuple(impersonate_groups)) if impersonate else None
        if in_cluster is None:
            in_cluster = kubeconfig is None and _no_kubeconfig() and "KUBERNETES_SERVICE_HOST" in os.environ
        self._in_cluster = in_cluster
        self._config_file = str(kubeconfig) if kubeconfig is not None else None
        self._context = context
        self._kubernetes: _KubernetesApi | None = None
        # The light read path (assay.rest), when the kubeconfig uses nothing but what assay.kubeconfig reads.
        self._reader: RestReader | None = None
        if in_cluster:
            self._kubernetes = self._connect()
            context_namespace = self._kubernetes.namespace
            self.source = "in-cluster service account"
        else:
            config_file = self._config_file
            if config_file is not None and not Path(config_file).expanduser().exists():
                raise ClusterUnreachable(f"kubeconfig {config_file} does not exist: check --kubeconfig")
            if config_file is None and _no_kubeconfig():
                env = os.environ.get("KUBECONFIG")
                where = f"$KUBECONFIG={env}" if env else "~/.kube/config"
                raise ClusterUnreachable(
                    f"no kubeconfig found ({where} does not exist) and not running in a pod: "
                    "pass --kubeconfig or set KUBECONFIG"
                )
            try:
                connection = load_connection(config_file, context)
            except Unsupported:
                self._kubernetes = self._connect()  # the kubernetes client's loader knows it
                context_namespace = self._kubernetes.namespace
            except ConfigError as error:
                raise ClusterUnreachable(f"cannot load the cluster configuration: {error}") from error
            else:
                try:
                    self._reader = RestReader(
                        connection, timeout=request_timeout, extra_headers=self._impersonation_headers()
                    )
                except (ValueError, OSError) as error:  # not an http(s) server; unusable TLS material
                    raise ClusterUnreachable(f"cannot load the cluster configuration: {error}") from error
                context_namespace = connection.namespace
            self.source = f"kubeconfig {config_file or os.environ.get('KUBECONFIG') or DEFAULT_KUBECONFIG}"
        self.host: str = self._reader.server if self._reader else self._kube.host
        self.namespace: str = namespace or context_namespace or "default"

    def _impersonation_headers(self) -> list[tuple[str, str]]:
        if self._impersonation is None:
            return []
        user, groups = self._impersonation
        return [("Impersonate-User", user), *(("Impersonate-Group", group) for group in groups)]

    def _connect(self) -> _KubernetesApi:
        """The kubernetes client for this cluster and user (the configuration loaded as it loads it)."""
        from kubernetes import client as k8s
        from kubernetes import config as k8s_config
        from kubernetes.config.config_exception import ConfigException

        configuration = k8s.Configuration()
        namespace: str | None = None
        try:
            if self._in_cluster:
                k8s_config.load_incluster_config(client_configuration=configuration)
                if IN_CLUSTER_NAMESPACE_FILE.exists():
                    namespace = IN_CLUSTER_NAMESPACE_FILE.read_text().strip() or None
            else:
                k8s_config.load_kube_config(
                    config_file=self._config_file,
                    context=self._context,
                    client_configuration=configuration,
                    persist_config=False,
                )
                namespace = _context_namespace(self._config_file, self._context)
        except ConfigException as error:
            raise ClusterUnreachable(f"cannot load the cluster configuration: {error}") from error
        except OSError as error:
            raise ClusterUnreachable(f"cannot read the kubeconfig: {error}") from error
        # Fail fast when the API server is down: one retry, not urllib3's default of three with backoff.
        configuration.retries = 1
        api_client = k8s.ApiClient(configuration)
        if self._impersonation is not None:
            _send_impersonation_headers(api_client, *self._impersonation)
        return _KubernetesApi(
            host=configuration.host,
            namespace=namespace,
            api_client=api_client,
            custom=k8s.CustomObjectsApi(api_client),
            core=k8s.CoreV1Api(api_client),
        )

    @property
    def _kube(self) -> _KubernetesApi:
        """The kubernetes client, made on first use: writes, logs and watches need it, reads may not."""
        if self._kubernetes is None:
            self._kubernetes = self._connect()
        return self._kubernetes

    @property
    def _custom(self) -> k8s.CustomObjectsApi:
        return self._kube.custom

    @property
    def _core(self) -> k8s.CoreV1Api:
        return self._kube.core

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        if self._kubernetes is not None:
            self._kubernetes.api_client.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing ---------------------------------------------------------------------------------------

    def _read(self, what: str, path: str, query: Mapping[str, str], kubernetes: Callable[[], object]) -> Any:
        """GET ``path`` as decoded JSON: through assay.rest when this client has its reader, else through
        the kubernetes client's call ``kubernetes`` (the same request)."""
        reader = self._reader
        if reader is not None:
            return self._call(what, lambda: reader.get(path, query))
        return self._call(what, kubernetes)

    def _items(
        self,
        what: str,
        plural: str,
        namespace: str | None,
        all_namespaces: bool,
        selector: str | None = None,
    ) -> list[dict[str, Any]]:
        """The stored objects of one of Assay's kinds, in a namespace or in every namespace."""
        kwargs: dict[str, Any] = {"_request_timeout": self.request_timeout}
        query = {"labelSelector": selector} if selector else {}
        if selector:
            kwargs["label_selector"] = selector
        if all_namespaces:
            raw = self._read(
                f"{what} in all namespaces",
                f"/apis/{GROUP}/{VERSION}/{plural}",
                query,
                lambda: self._custom.list_cluster_custom_object(GROUP, VERSION, plural, **kwargs),
            )
        else:
            ns = self._ns(namespace)
            raw = self._read(
                f"{what} in namespace {ns!r}",
                f"/apis/{GROUP}/{VERSION}/namespaces/{quote_path(ns)}/{plural}",
                query,
                lambda: self._custom.list_namespaced_custom_object(GROUP, VERSION, ns, plural, **kwargs),
            )
        items: list[dict[str, Any]] = _json_object(raw).get("items", [])
        return items

    def _call(self, what: str, request: Callable[[], T]) -> T:
        """Run one API request, turning transport and API errors into :class:`AssayError`."""
        try:
            return request()
        except ApiError as error:
            raise translate_api_error(error, what) from error
        except Unreachable as error:
            raise self._unreachable(error) from error
        # The kubernetes client's errors, imported only once a request failed otherwise (it is loaded then).
        except _kubernetes_api_exception() as error:
            if error.status == 0 or error.status is None:
                raise ClusterUnreachable(
                    f"cannot reach the Kubernetes API at {self.host}: {error.reason}"
                ) from error
            raise translate_api_error(error, what) from error
        except _urllib3_error() as error:
            raise self._unreachable(error) from error

    def _unreachable(self, error: Exception) -> ClusterUnreachable:
        reason = getattr(error, "reason", None) or error
        return ClusterUnreachable(
            f"cannot reach the Kubernetes API at {self.host} ({reason.__class__.__name__}): "
            "is the cluster up, and are --kubeconfig/--context right?"
        )

    def _ns(self, namespace: str | None) -> str:
        return namespace or self.namespace

    @staticmethod
    def _what(name: str, namespace: str) -> str:
        return f"evaluation {name!r} in namespace {namespace!r}"

    # --- reading ----------------------------------------------------------------------------------------

    def list(
        self,
        namespace: str | None = None,
        *,
        all_namespaces: bool = False,
        selector: str | None = None,
        pool: str | None = None,
        phase: str | None = None,
    ) -> Evaluations:
        """Evaluations, newest first. ``pool`` and ``phase`` filter on the client side (custom resources
        have no field selectors for them)."""
        items = self._items("evaluations", EVALUATION_PLURAL, namespace, all_namespaces, selector)
        evaluations = [Evaluation.model_validate(item) for item in items]
        if pool is not None:
            evaluations = [e for e in evaluations if e.spec.pool == pool]
        if phase is not None:
            wanted = phase.lower()
            evaluations = [e for e in evaluations if facts.phase_of(e).lower() == wanted]
        return sort_newest_first(evaluations)

    def get(self, name: str, namespace: str | None = None) -> Evaluation:
        ns = self._ns(namespace)
        raw = self._read(
            self._what(name, ns),
            f"/apis/{GROUP}/{VERSION}/namespaces/{quote_path(ns)}/{EVALUATION_PLURAL}/{quote_path(name)}",
            {},
            lambda: self._custom.get_namespaced_custom_object(
                GROUP, VERSION, ns, EVALUATION_PLURAL, name, _request_timeout=self.request_timeout
            ),
        )
        return Evaluation.model_validate(raw)

    def tasks(self, name: str, namespace: str | None = None) -> Tasks:
        """The status entry of every task (its latest attempt); in an Evaluation of over 100 tasks, the
        succeeded predict tasks have only their phase left (see ``EvaluationStatus.every_task``)."""
        return self.get(name, namespace).status.every_task()

    def attempts(self, name: str, namespace: str | None = None) -> Attempts:
        """Every attempt of every task whose pod still exists, oldest attempt first per task."""
        ns = self._ns(namespace)
        evaluation = self.get(name, ns)
        counts = {(t.step.value, t.index): t.attempts for t in evaluation.status.tasks}
        pods = self._call(
            f"pods of {self._what(name, ns)}",
            lambda: self._core.list_namespaced_pod(
                ns,
                label_selector=evaluation_pod_selector(name),
                _request_timeout=self.request_timeout,
                _preload_content=False,
            ),
        )
        items = json.loads(_raw(pods).data).get("items", [])
        return attempts_from_pods(items, counts)

    def _select(
        self, name: str, namespace: str | None, step: str | None, task: int | None, attempt: int | None
    ) -> TaskAttempt:
        candidates = self.attempts(name, namespace)
        return single_attempt(select_attempts(candidates, step=step, task=task, attempt=attempt))

    def logs(
        self,
        name: str,
        *,
        step: str | None = None,
        task: int | None = None,
        attempt: int | None = None,
        namespace: str | None = None,
        tail_lines: int | None = None,
    ) -> str:
        """The log of one task attempt (default: the latest); ``step``/``task`` pick one of several tasks."""
        chosen = self._select(name, namespace, step, task, attempt)
        return self.attempt_logs(chosen, namespace=namespace, tail_lines=tail_lines)

    def follow_logs(
        self,
        name: str,
        *,
        step: str | None = None,
        task: int | None = None,
        attempt: int | None = None,
        namespace: str | None = None,
    ) -> Iterator[str]:
        """Stream the log of one task attempt until its container ends."""
        chosen = self._select(name, namespace, step, task, attempt)
        return self.stream_attempt_logs(chosen, namespace=namespace)

    def attempt_logs(
        self, attempt: TaskAttempt, *, namespace: str | None = None, tail_lines: int | None = None
    ) -> str:
        ns = self._ns(namespace)
        kwargs: dict[str, Any] = {"_request_timeout": self.request_timeout, "_preload_content": False}
        if attempt.container:
            kwargs["container"] = attempt.container
        if tail_lines is not None:
            kwargs["tail_lines"] = tail_lines
        response = _raw(
            self._call(
                f"log of pod {attempt.pod!r} ({attempt.task}, attempt {attempt.attempt})",
                lambda: self._core.read_namespaced_pod_log(attempt.pod, ns, **kwargs),
            )
        )
        return response.data.decode("utf-8", errors="replace")

    def stream_attempt_logs(self, attempt: TaskAttempt, *, namespace: str | None = None) -> Iterator[str]:
        """The log as it grows, until the container ends. An attempt that already ended is read whole: there
        is nothing to follow (and a fake kubelet such as KWOK's would hold the stream open for ever)."""
        if attempt.phase in ("Succeeded", "Failed"):
            yield self.attempt_logs(attempt, namespace=namespace)
            return
        ns = self._ns(namespace)
        kwargs: dict[str, Any] = {"follow": True, "_preload_content": False}
        if attempt.container:
            kwargs["container"] = attempt.container
        response = _raw(
            self._call(
                f"log of pod {attempt.pod!r} ({attempt.task}, attempt {attempt.attempt})",
                lambda: self._core.read_namespaced_pod_log(attempt.pod, ns, **kwargs),
            )
        )
        # Chunks may split a multi-byte character; an incremental decoder joins them.
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            for chunk in response.stream(amt=4096, decode_content=True):
                text = decoder.decode(chunk)
                if text:
                    yield text
            rest = decoder.decode(b"", final=True)
            if rest:
                yield rest
        finally:
            # Closed, not just released: a stream left early still has unread data on its connection.
            response.close()
            response.release_conn()

    def results(
        self,
        name: str,
        namespace: str | None = None,
        *,
        only_wrong: bool = False,
        offset: int = 0,
        limit: int = results_io.DEFAULT_PAGE_SIZE,
        label: str | None = None,
        prediction: str | None = None,
        reader_image: str | None = None,
    ) -> results_io.ResultsPage:
        """One page of an evaluation's per-record results (index, label, prediction, whether they agree)
        and its report's metrics, read from ``status.results.location``: a path, ``file://`` or ``s3://``
        directly, ``pvc://`` through a short-lived reader pod (:mod:`assay.results_pod`; ``reader_image``
        defaults to the evaluation's runtime image). ``label``/``prediction`` keep only rows with that
        value, written as the tables show it (:func:`assay.results.value_text`)."""
        keep = results_io.RowFilter(only_wrong=only_wrong, label=label, prediction=prediction)
        ns = self._ns(namespace)
        evaluation = self.get(name, ns)
        results = evaluation.status.results
        if results is None:
            raise NotFound(f"{self._what(name, ns)} has no results yet (it is {facts.phase_of(evaluation)})")
        if not results.location:
            raise NotFound(
                f"{self._what(name, ns)} kept no per-record results: "
                "give it spec.output (a claim) to keep them"
            )
        claim = pvc_claim(results.location)
        if claim is None:
            return results_io.read_results(results.location, offset=offset, limit=limit, keep=keep)
        path = results.location[len(f"pvc://{claim}") :]
        report, names, lines = self._read_through_pod(evaluation, claim, path, reader_image)
        # The report says how many lines follow: reading stops there, not at the end of the stream (which
        # a kubelet holds open until the container exits).
        records = report.get("records")
        rows = itertools.islice(lines, records) if isinstance(records, int) else lines
        try:
            return results_io.page_from(
                report,
                names,
                lambda _: rows,
                offset=offset,
                limit=limit,
                location=results.location,
                keep=keep,
            )
        finally:
            lines.close()

    @contextlib.contextmanager
    def _reader_pod(self, evaluation: Evaluation, claim: str, path: str, image: str | None) -> Iterator[str]:
        """Create the reader pod, yield its name once it runs, and delete it afterwards (also on Ctrl-C)."""
        try:
            pool = self.pool(evaluation.spec.pool)
            selector, tolerations = (
                pool.spec.node_selector,
                [t.model_dump(by_alias=True, exclude_none=True) for t in pool.spec.tolerations],
            )
        except AssayError:  # a user who may not read the pool: the scheduler picks any node
            selector, tolerations = {}, []
        ns = evaluation.namespace
        # A claim that is gone would leave the pod Pending until the timeout: say so at once. (A user who
        # may not read claims learns it from the pod.)
        with contextlib.suppress(Forbidden):
            self._call(
                f"claim {claim!r} (the output of {self._what(evaluation.name, ns)})",
                lambda: self._core.read_namespaced_persistent_volume_claim(claim, ns),
            )
        body = results_pod.reader_pod(
            evaluation, claim, path, image=image, node_selector=selector, tolerations=tolerations
        )
        pod = body["metadata"]["name"]
        self._call(
            f"reader pod in namespace {ns!r}",
            lambda: self._core.create_namespaced_pod(ns, body),  # type: ignore[arg-type]  # a dict body is sent as is
        )
        try:
            self._wait_started(ns, pod)
            yield pod
        finally:
            with contextlib.suppress(AssayError):
                self._call(
                    f"reader pod {pod!r}",
                    lambda: self._core.delete_namespaced_pod(pod, ns, grace_period_seconds=0),
                )

    def _wait_started(self, ns: str, pod: str) -> None:
        from kubernetes import watch as k8s_watch

        stream = k8s_watch.Watch()
        last: dict[str, Any] = {}
        try:
            for event in stream.stream(
                self._core.list_namespaced_pod,
                ns,
                field_selector=f"metadata.name={pod}",
                timeout_seconds=results_pod.START_TIMEOUT_SECONDS,
            ):
                last = event["raw_object"]
                phase = (last.get("status") or {}).get("phase")
                if phase in ("Running", "Succeeded", "Failed"):
                    return
                stuck = results_pod.why_not_started(last)
                if stuck:
                    raise Invalid(f"the results reader pod {pod!r} cannot start: {stuck}")
        finally:
            stream.stop()
        raise WaitTimeout(
            f"the results reader pod {pod!r} did not start in {results_pod.START_TIMEOUT_SECONDS}s: "
            f"{results_pod.pending_reason(last)}"
        )

    def _read_through_pod(
        self, evaluation: Evaluation, claim: str, path: str, image: str | None
    ) -> tuple[dict[str, Any], Names, Generator[bytes]]:
        """The report, the shard names and a stream of prediction lines (which deletes the pod when
        closed or exhausted)."""
        reader = self._reader_pod(evaluation, claim, path, image)
        pod = reader.__enter__()

        def stream() -> Generator[bytes]:
            try:
                response = _raw(
                    self._call(
                        f"log of the results reader pod {pod!r}",
                        lambda: self._core.read_namespaced_pod_log(
                            pod,
                            evaluation.namespace,
                            container=results_pod.READER_CONTAINER,
                            follow=True,
                            _preload_content=False,
                            # A reader that stops printing is given up when its own deadline passes.
                            _request_timeout=(self.request_timeout, results_pod.READER_DEADLINE_SECONDS),
                        ),
                    )
                )
                try:
                    yield from results_pod.byte_lines(response.stream(amt=65536, decode_content=True))
                finally:
                    response.close()
                    response.release_conn()
            finally:
                reader.__exit__(None, None, None)

        lines = stream()
        try:
            report, names, rest = results_pod.split_stream(lines)
        except ValueError as error:
            lines.close()
            raise results_io.ResultsError(
                f"cannot read {evaluation.status.results.location if evaluation.status.results else claim}: "
                f"{error} (has the evaluation finished, and does the claim hold its output?)"
            ) from error
        except BaseException:
            lines.close()
            raise
        return report, names, rest

    def compare(
        self,
        names: Sequence[str],
        *,
        baseline: str | None = None,
        only_diff: bool = False,
        columns: Sequence[str] | None = None,
        namespace: str | None = None,
    ) -> comparing.Comparison:
        """Compare evaluations metric by metric against ``baseline`` (default: the first name)."""
        subjects = [facts.subject(self.get(name, namespace)) for name in names]
        try:
            return comparing.compare(subjects, baseline=baseline, only_diff=only_diff, columns=columns)
        except comparing.CompareError as error:
            raise Invalid(str(error)) from error

    # --- EvaluationSets --------------------------------------------------------------------------------

    def sets(self, namespace: str | None = None, *, all_namespaces: bool = False) -> EvaluationSets:
        """EvaluationSets of the namespace (or of every namespace), newest first."""
        items = self._items("evaluation sets", EVALUATION_SET_PLURAL, namespace, all_namespaces)
        found = [EvaluationSet.model_validate(item) for item in items]
        return sorted(found, key=lambda s: s.metadata.creation_timestamp or _NEVER, reverse=True)

    def evaluation_set(self, name: str, namespace: str | None = None) -> EvaluationSet:
        ns = self._ns(namespace)
        raw = self._read(
            f"evaluation set {name!r} in namespace {ns!r}",
            f"/apis/{GROUP}/{VERSION}/namespaces/{quote_path(ns)}/{EVALUATION_SET_PLURAL}/{quote_path(name)}",
            {},
            lambda: self._custom.get_namespaced_custom_object(
                GROUP, VERSION, ns, EVALUATION_SET_PLURAL, name, _request_timeout=self.request_timeout
            ),
        )
        return EvaluationSet.model_validate(raw)

    def set_children(self, name: str, namespace: str | None = None) -> Evaluations:
        """The set's child Evaluations, in the order of its table (rows, then columns)."""
        evaluation_set = self.evaluation_set(name, namespace)
        uid = evaluation_set.metadata.uid
        owned = {
            e.name: e
            for e in self.list(namespace, selector=f"{LABEL_EVALUATION_SET}={label_value(name)}")
            if any(
                ref.get("uid") == uid for ref in (e.metadata.model_extra or {}).get("ownerReferences") or []
            )
        }
        table = evaluation_set.status.table
        order = [cell.evaluation for row in table.rows for cell in row.cells] if table is not None else []
        return [owned[n] for n in order if n in owned] + [e for n, e in owned.items() if n not in order]

    def compare_set(
        self,
        name: str,
        *,
        baseline: str | None = None,
        only_diff: bool = False,
        columns: Sequence[str] | None = None,
        namespace: str | None = None,
    ) -> comparing.Comparison:
        """Compare a set's children; the baseline defaults to the set's baseline cell of its first row."""
        children = self.set_children(name, namespace)
        if not children:
            raise Invalid(f"evaluation set {name!r} has no child evaluations yet")
        if baseline is None:
            table = self.evaluation_set(name, namespace).status.table
            marked = [c.evaluation for row in (table.rows if table else []) for c in row.cells if c.baseline]
            baseline = next((n for n in marked if n in {e.name for e in children}), None)
        subjects = [facts.subject(child) for child in children]
        try:
            return comparing.compare(subjects, baseline=baseline, only_diff=only_diff, columns=columns)
        except comparing.CompareError as error:
            raise Invalid(str(error)) from error

    def pools(self) -> Pools:
        raw = self._read(
            "resource pools",
            f"/apis/{GROUP}/{VERSION}/{POOL_PLURAL}",
            {},
            lambda: self._custom.list_cluster_custom_object(
                GROUP, VERSION, POOL_PLURAL, _request_timeout=self.request_timeout
            ),
        )
        pools = [ResourcePool.model_validate(item) for item in _json_object(raw).get("items", [])]
        return sorted(pools, key=lambda p: p.metadata.name or "")

    def pool(self, name: str) -> ResourcePool:
        raw = self._read(
            f"resource pool {name!r}",
            f"/apis/{GROUP}/{VERSION}/{POOL_PLURAL}/{quote_path(name)}",
            {},
            lambda: self._custom.get_cluster_custom_object(
                GROUP, VERSION, POOL_PLURAL, name, _request_timeout=self.request_timeout
            ),
        )
        return ResourcePool.model_validate(raw)

    # --- writing ----------------------------------------------------------------------------------------

    def create(
        self,
        evaluation: Evaluation | Mapping[str, Any],
        namespace: str | None = None,
        *,
        dry_run: bool = False,
        debug_password: str | None = None,
    ) -> Evaluation:
        """Create an Evaluation from a model or a manifest dict; returns it as the cluster stored it.
        ``dry_run``: a server-side dry run: admission checks it and nothing is stored.
        ``debug_password``: debug mode behind this password, kept in a Secret the Evaluation owns
        (:mod:`assay.debug_password`); a dry run checks the password's length and leaves the Secret out."""
        if isinstance(evaluation, Evaluation):
            body: dict[str, Any] = evaluation.to_api()
        else:
            body = dict(evaluation)
        body.setdefault("apiVersion", API_VERSION)
        body.setdefault("kind", "Evaluation")
        if body.get("kind") != "Evaluation":
            raise Invalid(f"expected kind Evaluation, got {body.get('kind')!r}")
        metadata = dict(body.get("metadata") or {})
        name = metadata.get("name")
        if not name and not metadata.get("generateName"):
            raise Invalid("the evaluation has no metadata.name")
        ns = namespace or metadata.get("namespace") or self.namespace
        metadata["namespace"] = ns
        body["metadata"] = metadata
        if debug_password is None:
            return self._post_evaluation(body, ns, dry_run=dry_run)
        debug_password_rules.check_password(debug_password)
        if dry_run:
            return self._post_evaluation(debug_password_rules.with_debug(body), ns, dry_run=True)
        return self._create_with_debug_password(body, ns, debug_password)

    def _post_evaluation(self, body: dict[str, Any], ns: str, *, dry_run: bool = False) -> Evaluation:
        metadata = body["metadata"]
        options: dict[str, Any] = {"_request_timeout": self.request_timeout, "field_manager": FIELD_MANAGER}
        if dry_run:
            options["dry_run"] = "All"
        raw = self._call(
            self._what(metadata.get("name") or metadata.get("generateName", ""), ns),
            lambda: self._custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                ns,
                EVALUATION_PLURAL,
                body,
                **options,
            ),
        )
        return Evaluation.model_validate(raw)

    def _create_with_debug_password(self, body: dict[str, Any], ns: str, password: str) -> Evaluation:
        """A dry run of the Evaluation first (a refusal then creates nothing), the password's Secret next
        (admission reads it), then the Evaluation naming it, then the Secret made the Evaluation's
        dependent. An Evaluation refused after all takes its Secret with it."""
        self._post_evaluation(debug_password_rules.with_debug(body), ns, dry_run=True)
        metadata = body["metadata"]
        what = f"the debug password Secret in namespace {ns!r}"
        manifest = debug_password_rules.password_secret(
            metadata.get("name") or metadata["generateName"], password
        )
        secret = self._call(
            what,
            lambda: self._core.create_namespaced_secret(
                ns,
                manifest,  # type: ignore[arg-type]  # a dict body is sent as is
                field_manager=FIELD_MANAGER,
                _request_timeout=self.request_timeout,
            ),
        )
        secret_name = str(secret.metadata.name if secret.metadata else "")
        try:
            created = self._post_evaluation(debug_password_rules.with_debug(body, secret_name), ns)
        except BaseException:
            with contextlib.suppress(AssayError):
                self._call(
                    what,
                    lambda: self._core.delete_namespaced_secret(
                        secret_name, ns, _request_timeout=self.request_timeout
                    ),
                )
            raise
        self._call(
            what,
            lambda: self._core.patch_namespaced_secret(
                secret_name,
                ns,
                debug_password_rules.owned_by(created),
                field_manager=FIELD_MANAGER,
                _request_timeout=self.request_timeout,
            ),
        )
        return created

    def quote(self, evaluation: Evaluation) -> Quote | None:
        """What ``evaluation`` costs on its pool (None: the pool has no pricing), with the operator's
        arithmetic (:func:`assay.quote.quote`)."""
        return quote(evaluation.spec, self.pool(evaluation.spec.pool))

    def create_from_file(self, path: str | os.PathLike[str], namespace: str | None = None) -> Evaluations:
        """Create every Evaluation in a YAML or JSON file (``-`` reads stdin); stops at the first error."""
        return [self.create(doc, namespace) for doc in load_manifests(path)]

    def _patch_spec(self, name: str, namespace: str | None, spec: Mapping[str, Any]) -> Evaluation:
        ns = self._ns(namespace)
        # CustomObjectsApi sends a JSON merge patch (custom resources have no strategic merge patch).
        raw = self._call(
            self._what(name, ns),
            lambda: self._custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                ns,
                EVALUATION_PLURAL,
                name,
                {"spec": dict(spec)},
                _request_timeout=self.request_timeout,
            ),
        )
        return Evaluation.model_validate(raw)

    def cancel(self, name: str, namespace: str | None = None) -> Evaluation:
        """Stop an evaluation for good (``spec.cancel: true``); the record stays."""
        return self._patch_spec(name, namespace, {"cancel": True})

    def suspend(self, name: str, namespace: str | None = None) -> Evaluation:
        """Stop the tasks and keep the record (``spec.suspend: true``); :meth:`resume` continues."""
        return self._patch_spec(name, namespace, {"suspend": True})

    def resume(self, name: str, namespace: str | None = None) -> Evaluation:
        return self._patch_spec(name, namespace, {"suspend": False})

    def delete(self, name: str, namespace: str | None = None) -> None:
        ns = self._ns(namespace)
        self._call(
            self._what(name, ns),
            lambda: self._custom.delete_namespaced_custom_object(
                GROUP, VERSION, ns, EVALUATION_PLURAL, name, _request_timeout=self.request_timeout
            ),
        )

    # --- waiting ----------------------------------------------------------------------------------------

    def wait(
        self,
        name: str,
        timeout: float | None = None,
        namespace: str | None = None,
        *,
        on_change: Callable[[Evaluation], None] | None = None,
    ) -> Evaluation:
        """Block until the evaluation reaches a terminal phase (Succeeded, Failed, Cancelled, Expired) and
        return it; :class:`WaitTimeout` after ``timeout`` seconds (None: wait for ever)."""
        ns = self._ns(namespace)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            current = self.get(name, ns)
            if on_change is not None:
                on_change(current)
            if facts.is_terminal(current):
                return current
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise WaitTimeout(
                    f"{self._what(name, ns)} is still {facts.phase_of(current)} after {timeout:g}s"
                )
            # Watch from the version just read; when the window closes or the watch expires, read again.
            window = 60 if remaining is None else max(1, min(60, int(remaining + 0.999)))
            for changed in self._watch(name, ns, current.metadata.resource_version, window):
                if on_change is not None:
                    on_change(changed)
                if facts.is_terminal(changed):
                    return changed
                if deadline is not None and time.monotonic() >= deadline:
                    break

    def _watch(self, name: str, ns: str, resource_version: str | None, window: int) -> Iterator[Evaluation]:
        """Changes of one evaluation for up to ``window`` seconds. Ends early when the watch expires (410)
        or the connection drops: the caller reads the object again, which also tells whether the server is
        still there."""
        from kubernetes import watch as k8s_watch

        stream = k8s_watch.Watch()
        try:
            for event in stream.stream(
                self._custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                ns,
                EVALUATION_PLURAL,
                field_selector=f"metadata.name={name}",
                resource_version=resource_version,
                timeout_seconds=window,
                _request_timeout=window + 15,
            ):
                kind = event.get("type")
                if kind == "DELETED":
                    raise NotFound(f"{self._what(name, ns)} was deleted while waiting")
                if kind == "ERROR":
                    return
                yield Evaluation.model_validate(event["object"])
        except _kubernetes_api_exception() as error:
            if error.status == 410:
                return
            raise translate_api_error(error, self._what(name, ns)) from error
        except _urllib3_error():
            return
        finally:
            stream.stop()


_NEVER = datetime.min.replace(tzinfo=UTC)


def _no_kubeconfig() -> bool:
    env = os.environ.get("KUBECONFIG")
    if env:
        return not any(Path(p).expanduser().exists() for p in env.split(os.pathsep) if p)
    return not DEFAULT_KUBECONFIG.expanduser().exists()


def _context_namespace(config_file: str | None, context: str | None) -> str | None:
    from kubernetes import config as k8s_config
    from kubernetes.config.config_exception import ConfigException

    try:
        contexts, active = k8s_config.list_kube_config_contexts(config_file)
    except (ConfigException, OSError):
        return None
    chosen = active
    if context is not None:
        chosen = next((c for c in contexts if c.get("name") == context), None)
    if not chosen:
        return None
    namespace = (chosen.get("context") or {}).get("namespace")
    return str(namespace) if namespace else None


def sort_newest_first(evaluations: Sequence[Evaluation]) -> list[Evaluation]:
    """Newest first, by creation time then name (so equal timestamps still sort stably)."""
    return sorted(
        evaluations,
        key=lambda e: (
            facts.format_time(e.metadata.creation_timestamp) or "",
            e.metadata.name or "",
        ),
        reverse=True,
    )


def load_manifests(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The documents of a YAML/JSON manifest file (``-`` = stdin), skipping empty ones; ``List`` objects are
    unpacked. Raises :class:`Invalid` with the file name for unreadable or malformed files."""
    import sys

    name = str(path)
    try:
        text = sys.stdin.read() if name == "-" else Path(path).read_text()
    except OSError as error:
        raise Invalid(f"cannot read {name}: {error.strerror or error}") from error
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc]
    except yaml.YAMLError as error:
        raise Invalid(f"{name} is not valid YAML: {str(error).splitlines()[0]}") from error
    manifests: list[dict[str, Any]] = []
    for doc in documents:
        if not isinstance(doc, dict):
            raise Invalid(f"{name}: expected a mapping per document, got {type(doc).__name__}")
        if doc.get("kind") == "List" or (doc.get("kind", "").endswith("List") and "items" in doc):
            manifests.extend(doc.get("items") or [])
        else:
            manifests.append(doc)
    if not manifests:
        raise Invalid(f"{name} holds no objects")
    return manifests

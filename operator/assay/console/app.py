"""The console's web application: routes from URLs to :class:`assay.Client` calls and templates.

A thin layer: reading and writing go through the SDK (so the console can do exactly what the user's
kubeconfig may), what the pages show comes from :mod:`assay.facts`, :mod:`assay.compare`, the CLI's views
and the pure view models next to this module. Handlers are plain functions: Starlette runs them in its
thread pool, where the synchronous SDK belongs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from assay import compare as comparing
from assay import facts
from assay.api import Evaluation, EvaluationSet, Phase, ResourcePool
from assay.attempts import TaskAttempt, select_attempts, single_attempt
from assay.cli import views
from assay.console.compare_view import CompareView, bar_fractions, split_ref
from assay.console.create_form import CreateForm
from assay.console.guard import TokenGuard
from assay.console.panes import Panes, query_string
from assay.console.results_view import PAGE_SIZES, ResultsQuery, matrix_picture
from assay.console.sets_view import children_compared, grid, set_rows
from assay.console.viewstate import ListView, available_columns, cell, column_title
from assay.contract import MIN_DEBUG_PASSWORD_LENGTH
from assay.errors import AssayError, ClusterUnreachable, Forbidden, Invalid, NotFound
from assay.quote import Quote, quote
from assay.results import DEFAULT_PAGE_SIZE, ResultsPage, class_tables, confusion_matrices, value_text

HERE = Path(__file__).parent
LIST_POLL_SECONDS = 5
LOG_POLL_SECONDS = 2
LOG_TAIL_LINES = 2000
ACTIONS = ("cancel", "suspend", "resume")
EXPORTS = {
    "csv": (comparing.to_csv, "text/csv"),
    "md": (comparing.to_markdown, "text/markdown"),
    "json": (comparing.to_json, "application/json"),
}
log = logging.getLogger(__name__)
Evaluations = list[Evaluation]  # `ConsoleClient.list` shadows the builtin in the class body
Attempts = list[TaskAttempt]
Pools = list[ResourcePool]
EvaluationSets = list[EvaluationSet]


class ConsoleClient(Protocol):
    """What the console needs of :class:`assay.Client` (tests may pass a stand-in for the page tests)."""

    namespace: str
    source: str  # where the credentials came from, as `assay ui` announces it

    def list(self, namespace: str | None = None, *, all_namespaces: bool = False) -> Evaluations: ...
    def get(self, name: str, namespace: str | None = None) -> Evaluation: ...
    def attempts(self, name: str, namespace: str | None = None) -> Attempts: ...
    def attempt_logs(
        self, attempt: TaskAttempt, *, namespace: str | None = None, tail_lines: int | None = None
    ) -> str: ...
    def cancel(self, name: str, namespace: str | None = None) -> Evaluation: ...
    def suspend(self, name: str, namespace: str | None = None) -> Evaluation: ...
    def resume(self, name: str, namespace: str | None = None) -> Evaluation: ...
    def sets(self, namespace: str | None = None, *, all_namespaces: bool = False) -> EvaluationSets: ...
    def evaluation_set(self, name: str, namespace: str | None = None) -> EvaluationSet: ...
    def pools(self) -> Pools: ...
    def pool(self, name: str) -> ResourcePool: ...
    def create(
        self,
        evaluation: Mapping[str, Any],
        namespace: str | None = None,
        *,
        debug_password: str | None = None,
    ) -> Evaluation: ...
    def results(
        self,
        name: str,
        namespace: str | None = None,
        *,
        offset: int = 0,
        limit: int = DEFAULT_PAGE_SIZE,
        label: str | None = None,
        prediction: str | None = None,
        only_wrong: bool = False,
    ) -> ResultsPage: ...


@dataclass
class ListScope:
    """Which evaluations the list shows: one namespace, or all of them (``assay ui -n NS`` / ``-A``)."""

    namespace: str
    all_namespaces: bool = False

    @property
    def label(self) -> str:
        return "all namespaces" if self.all_namespaces else f"namespace {self.namespace}"


@dataclass
class LastList:
    """The last list the cluster answered: shown, marked stale, while the cluster is unreachable."""

    evaluations: list[Evaluation] = field(default_factory=list)
    at: datetime | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


STATUS_OF_ERROR: dict[type[AssayError], int] = {
    NotFound: 404,
    Forbidden: 403,
    Invalid: 422,
    ClusterUnreachable: 503,
}


def error_status(error: AssayError) -> int:
    return next((code for kind, code in STATUS_OF_ERROR.items() if isinstance(error, kind)), 502)


def _now() -> datetime:
    return datetime.now(UTC)


# The closures below are the routes; ruff counts them into the factory (each is small).
def create_app(  # noqa: C901
    client: ConsoleClient,
    scope: ListScope,
    *,
    token: str,
    hosts: Collection[str],
    cookie: str = "assay-console",
    now: Callable[[], datetime] = _now,
    read_only: bool = False,
) -> Starlette:
    """The console's app. ``read_only`` (the in-cluster console) leaves out create, cancel, suspend and
    resume: their routes do not exist and no page links to them."""
    templates = Jinja2Templates(directory=HERE / "templates")
    env = templates.env
    env.filters["value"] = comparing.format_value
    env.filters["mark"] = comparing.mark_text
    env.globals.update(
        column_title=column_title, phases=[p.value for p in Phase], scope=scope, read_only=read_only
    )
    last = LastList()

    def page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    def error_page(request: Request, error: AssayError, fragment: bool = False) -> Response:
        return page(
            request,
            "_error.html" if fragment else "error.html",
            {"error": str(error), "kind": type(error).__name__},
            error_status(error),
        )

    def listed() -> tuple[list[Evaluation], str | None]:
        """The evaluations in scope and, when the cluster did not answer, why (the last list stands in)."""
        try:
            evaluations = client.list(scope.namespace, all_namespaces=scope.all_namespaces)
        except ClusterUnreachable as error:
            with last.lock:
                since = f" (showing the list of {facts.format_time(last.at)})" if last.at else ""
                return list(last.evaluations), f"{error}{since}; retrying every {LIST_POLL_SECONDS}s"
        with last.lock:
            last.evaluations, last.at = evaluations, now()
        return evaluations, None

    def list_context(request: Request) -> dict[str, Any]:
        view = ListView.from_query(request.query_params, all_namespaces=scope.all_namespaces)
        panes = Panes.from_query(request.query_params.getlist("e"), request.query_params)

        def link(changed: ListView, shown: Panes = panes) -> str:
            return "?" + query_string(
                changed.to_params(all_namespaces=scope.all_namespaces), shown.to_params()
            )

        evaluations, stale = listed()
        moment = now()
        shown = view.apply(evaluations, moment)
        rows = [
            {
                "ref": f"{e.namespace}/{e.name}",
                "phase": facts.phase_of(e),
                "cells": [cell(e, column, moment)[0] for column in view.shown],
            }
            for e in shown
        ]
        return {
            "view": view,
            "panes": panes,
            "beside": panes.details(scope.namespace),
            "query": link(view)[1:],
            "rows": rows,
            "total": len(evaluations),
            "stale": stale,
            "columns": available_columns(evaluations) or list(view.columns),
            "pools": sorted({e.spec.pool for e in evaluations}),
            "poll": LIST_POLL_SECONDS,
            "updated": moment.strftime("%H:%M:%S"),
            "link": link,
        }

    def list_page(request: Request) -> Response:
        try:
            return page(request, "list.html", list_context(request))
        except AssayError as error:
            return error_page(request, error)

    def list_rows(request: Request) -> Response:
        try:
            return page(request, "_rows.html", list_context(request))
        except AssayError as error:
            return error_page(request, error, fragment=True)

    def compared(request: Request) -> tuple[CompareView, comparing.Comparison]:
        view = CompareView.from_query(request.query_params.getlist("e"), request.query_params)
        if not view.refs:
            raise Invalid("nothing to compare: tick one or more evaluations in the list")
        evaluations = [
            client.get(name, ns) for ns, name in (split_ref(r, scope.namespace) for r in view.refs)
        ]
        return view, view.comparison(evaluations, now())

    def compare_page(request: Request) -> Response:
        try:
            view, comparison = compared(request)
        except AssayError as error:
            return error_page(request, error)
        return page(
            request,
            "compare.html",
            {
                "view": view,
                "comparison": comparison,
                "refs": [view.ref_of(comparison, i) for i in range(len(comparison.subjects))],
                "title": comparing.column_title,
                "bars": bar_fractions,
            },
        )

    def compare_export(request: Request) -> Response:
        fmt = request.path_params["fmt"]
        if fmt not in EXPORTS:
            return PlainTextResponse(f"unknown export format {fmt!r}: use csv, md or json", 404)
        try:
            _, comparison = compared(request)
        except AssayError as error:
            return PlainTextResponse(f"error: {error}", error_status(error))
        render, media_type = EXPORTS[fmt]
        return Response(
            render(comparison),
            media_type=media_type,
            headers={"Content-Disposition": f'attachment; filename="comparison.{fmt}"'},
        )

    def details_context(namespace: str, name: str) -> dict[str, Any]:
        evaluation = client.get(name, namespace)
        moment = now()
        spec = evaluation.spec
        return {
            "e": evaluation,
            "phase": facts.phase_of(evaluation),
            "terminal": facts.is_terminal(evaluation),
            "model": f"{spec.model.name}:{spec.model.version}" if spec.model.version else spec.model.name,
            "dataset": (
                f"{spec.dataset.name}:{spec.dataset.version}" if spec.dataset.version else spec.dataset.name
            ),
            "spec_pairs": [(k, comparing.format_value(v)) for k, v in views.spec_pairs(evaluation)],
            "sys": {k: v for k, v in facts.sys_facts(evaluation, moment).items() if v is not None},
            "cost": facts.cost_text(evaluation),
            "duration": facts.format_duration(facts.duration(evaluation, moment)),
            "created": facts.format_time(evaluation.metadata.creation_timestamp),
            "created_with": facts.created_with(evaluation),
            "finished": facts.format_time(evaluation.status.completion_time),
            "summary": facts.summary(evaluation),
            "conditions": [
                {
                    "type": c.type,
                    "status": c.status.value,
                    "reason": c.reason,
                    "message": c.message,
                    "age": facts.age(c.last_transition_time, moment),
                }
                for c in evaluation.status.conditions
            ],
            "debug": facts.debug_hint(evaluation),
            "actions": () if read_only else _actions_for(evaluation),
        }

    def details_page(request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        tab = request.query_params.get("tab", "summary")
        try:
            context = details_context(namespace, name)
            if tab == "tasks":
                context.update(tasks_context(namespace, name, context["e"]))
            elif tab == "results":
                context.update(results_context(namespace, name, request.query_params))
        except AssayError as error:
            return error_page(request, error)
        context.update(tab=tab, error=request.query_params.get("error"))
        return page(request, "details.html", context)

    def tasks_context(namespace: str, name: str, evaluation: Evaluation) -> dict[str, Any]:
        attempts = client.attempts(name, namespace)
        rows = views.task_rows(evaluation.status.tasks, attempts, now=now())
        return {
            "task_rows": [[getattr(c, "plain", c) for c in row] for row in rows],
            "attempts": attempts,
        }

    def results_context(namespace: str, name: str, query: Mapping[str, str]) -> dict[str, Any]:
        """One page of the per-record results; a problem reading them is shown in the tab, not instead of
        the page (an evaluation still running has none yet)."""
        wanted = ResultsQuery.from_query(query)
        context: dict[str, Any] = {"rq": wanted, "page_sizes": PAGE_SIZES, "text": value_text}
        try:
            page = client.results(
                name,
                namespace,
                offset=wanted.offset,
                limit=wanted.limit,
                only_wrong=wanted.only_wrong,
                label=wanted.label,
                prediction=wanted.prediction,
            )
        except AssayError as error:
            return {**context, "results_error": str(error)}
        return {
            **context,
            "page": page,
            "matrices": [matrix_picture(m) for m in confusion_matrices(page.metrics)],
            "class_tables": class_tables(page.metrics),
        }

    def log_fragment(request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        query = request.query_params
        try:
            attempts = client.attempts(name, namespace)
            attempt = single_attempt(
                select_attempts(
                    attempts,
                    step=query.get("step"),
                    task=int(query["task"]) if query.get("task", "").isdigit() else None,
                    attempt=int(query["attempt"]) if query.get("attempt", "").isdigit() else None,
                )
            )
            text = client.attempt_logs(attempt, namespace=namespace, tail_lines=LOG_TAIL_LINES)
        except AssayError as error:
            return error_page(request, error, fragment=True)
        running = attempt.phase not in ("Succeeded", "Failed")
        return page(
            request,
            "_log.html",
            {"attempt": attempt, "text": text, "running": running, "poll": LOG_POLL_SECONDS, "query": query},
        )

    def sets_page(request: Request) -> Response:
        try:
            found = client.sets(scope.namespace, all_namespaces=scope.all_namespaces)
        except AssayError as error:
            return error_page(request, error)
        return page(request, "sets.html", {"rows": set_rows(found, now()), "scope": scope})

    def set_page(request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        try:
            evaluation_set = client.evaluation_set(name, namespace)
        except AssayError as error:
            return error_page(request, error)
        children = ListView.defaults(all_namespaces=scope.all_namespaces).with_(evaluation_set=name)
        return page(
            request,
            "set.html",
            {
                "s": evaluation_set,
                "grid": grid(evaluation_set),
                "children": "?" + query_string(children.to_params(all_namespaces=scope.all_namespaces)),
                "compared": "?"
                + query_string(
                    children.to_params(all_namespaces=scope.all_namespaces),
                    children_compared(evaluation_set).to_params(),
                ),
            },
        )

    def act(request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        action = request.path_params["action"]
        target = request.url_for("details", namespace=namespace, name=name).path
        if action not in ACTIONS:
            return PlainTextResponse(f"unknown action {action!r}", 404)
        try:
            getattr(client, action)(name, namespace)
        except AssayError as error:
            return RedirectResponse(f"{target}?{urlencode({'error': str(error)})}", 303)
        return RedirectResponse(target, 303)

    def pools_or_error() -> tuple[list[ResourcePool], str | None]:
        try:
            return client.pools(), None
        except AssayError as error:
            return [], str(error)

    def quoted(form: CreateForm) -> Quote | None:
        """The price of the form's evaluation on its pool (Invalid when the form is not complete)."""
        evaluation = form.evaluation()
        return quote(evaluation.spec, client.pool(evaluation.spec.pool))

    def create_context(form: CreateForm, error: str | None = None) -> dict[str, Any]:
        pools, pools_error = pools_or_error()
        return {
            "form": form.values,
            "pools": pools,
            "error": error or pools_error,
            "min_password": MIN_DEBUG_PASSWORD_LENGTH,
        }

    async def create_page(request: Request) -> Response:
        form = CreateForm.from_fields(request.query_params, namespace=scope.namespace)
        return page(request, "create.html", await run_in_threadpool(create_context, form))

    async def create_quote(request: Request) -> Response:
        form = CreateForm.from_fields(await request.form(), namespace=scope.namespace)
        try:
            price = await run_in_threadpool(quoted, form)
        except AssayError as error:
            return page(request, "_quote.html", {"problem": str(error)})
        return page(request, "_quote.html", {"quote": price, "format_duration": facts.format_duration})

    async def create_submit(request: Request) -> Response:
        form = CreateForm.from_fields(await request.form(), namespace=scope.namespace)
        try:
            form.evaluation()  # the model's own checks first: their messages name the field
            manifest = form.manifest()
            created = await run_in_threadpool(
                lambda: client.create(manifest, form.values["namespace"], debug_password=form.password)
            )
        except AssayError as error:
            context = await run_in_threadpool(create_context, form, str(error))
            return page(request, "create.html", context, error_status(error))
        target = request.url_for("details", namespace=created.namespace, name=created.name)
        return RedirectResponse(target.path, 303)

    changing = [
        Route("/create", create_page, name="create"),
        Route("/create", create_submit, methods=["POST"], name="create_submit"),
        Route("/create/quote", create_quote, methods=["POST"], name="quote"),
        Route("/e/{namespace}/{name}/{action}", act, methods=["POST"], name="act"),
    ]
    routes = [
        *([] if read_only else changing),
        Route("/", list_page, name="list"),
        Route("/rows", list_rows, name="rows"),
        Route("/compare", compare_page, name="compare"),
        Route("/compare/export.{fmt}", compare_export, name="export"),
        Route("/e/{namespace}/{name}", details_page, name="details"),
        Route("/e/{namespace}/{name}/log", log_fragment, name="log"),
        Route("/sets", sets_page, name="sets"),
        Route("/s/{namespace}/{name}", set_page, name="set_details"),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [Middleware(TokenGuard, token=token, hosts=hosts, cookie=cookie)]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={Exception: _internal_error})
    return app


def _actions_for(evaluation: Evaluation) -> Sequence[str]:
    """The buttons that make sense now: nothing for a finished evaluation, resume only when suspended."""
    if facts.is_terminal(evaluation):
        return ()
    if evaluation.spec.suspend or evaluation.status.phase is Phase.SUSPENDED:
        return ("resume", "cancel")
    return ("suspend", "cancel")


async def _internal_error(request: Request, error: Exception) -> Response:
    # A bug of the console: the traceback goes to the terminal that runs it, never into the page.
    log.exception("console error on %s", request.url.path, exc_info=error)
    return PlainTextResponse("internal error of the console: see the terminal running `assay ui`", 500)

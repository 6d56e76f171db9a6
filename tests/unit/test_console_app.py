"""Every page of the console over HTTP (Starlette's TestClient), on a stand-in client: what each page shows,
the token and Host guard, errors as what to fix, and the list surviving an unreachable cluster."""

from __future__ import annotations

import json

import pytest
from cli_samples import raw_evaluation
from console_fakes import HOST, TOKEN, FakeClient, console

from assay.api import Evaluation
from assay.errors import ClusterUnreachable, Forbidden, Invalid

# An Evaluation made with `kubectl create`, then taken up by the operator: kopf added its finalizer, the
# operator wrote the status (a subresource: that entry claims spec.model here only to show it never counts).
MANAGED_FIELDS = [
    {
        "manager": "kopf",
        "operation": "Update",
        "time": "2026-11-26T11:00:01Z",
        "fieldsV1": {"f:metadata": {"f:finalizers": {}}},
    },
    {
        "manager": "assay-operator",
        "operation": "Update",
        "subresource": "status",
        "time": "2026-11-26T11:00:02Z",
        "fieldsV1": {"f:status": {"f:phase": {}}, "f:spec": {"f:model": {}}},
    },
    {
        "manager": "kubectl-create",
        "operation": "Update",
        "time": "2026-11-26T11:00:00Z",
        "fieldsV1": {"f:spec": {"f:model": {"f:name": {}}, "f:pool": {}}},
    },
]


@pytest.fixture
def fake() -> FakeClient:
    return FakeClient()


# --- the guard --------------------------------------------------------------------------------------------


def test_without_the_token_every_page_is_forbidden(fake: FakeClient):
    stranger = console(fake, logged_in=False)
    for path in ("/", "/rows", "/e/team-a/cnn-v3", "/static/htmx.min.js"):
        answer = stranger.get(path)
        assert answer.status_code == 403, path
        assert "open the console with the URL `assay ui` printed" in answer.text
    assert stranger.get("/?token=wrong").status_code == 403
    assert fake.calls == []


def test_the_token_sets_a_cookie_and_leaves_the_url(fake: FakeClient):
    browser = console(fake, logged_in=False)
    answer = browser.get(f"/compare?e=team-a/cnn-v3&token={TOKEN}")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/compare?e=team-a%2Fcnn-v3"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert browser.get("/").status_code == 200


def test_other_host_headers_are_refused(fake: FakeClient):
    browser = console(fake)
    answer = browser.get("/", headers={"Host": "evil.example:8765"})
    assert answer.status_code == 403 and "answers only on testserver" in answer.text


def test_a_post_from_another_site_is_refused(fake: FakeClient):
    browser = console(fake)
    answer = browser.post("/e/team-a/mlp-v1/cancel", headers={"Origin": "http://evil.example"})
    assert answer.status_code == 403
    assert ("cancel", "mlp-v1") not in fake.calls


# --- list ---------------------------------------------------------------------------------------------


def test_the_list_shows_the_list_columns_newest_first(fake: FakeClient):
    page = console(fake).get("/").text
    for header in ("NAME", "POOL", "PHASE", "TASKS", "RESULT", "COST", "AGE"):
        assert f">{header}</a>" in page
    assert page.index("mlp-v1") < page.index("cnn-v4") < page.index("cnn-v3")
    assert "accuracy=0.9912" in page and "1.27 / 40.00 USD" in page
    assert "/static/htmx.min.js" in page and "//unpkg" not in page and "cdn" not in page.lower()
    assert 'hx-trigger="every 5s"' in page
    # The column menu offers metrics and sys facts, each a link to the changed view.
    assert 'href="?cols=name,pool,phase,tasks,result,cost,age,m:recall"' in page
    assert "sys/duration" in page


def test_one_list_request_per_refresh_whatever_the_rows(fake: FakeClient):
    browser = console(fake)
    fake.calls.clear()
    fragment = browser.get("/rows?cols=name,m:accuracy,sys/duration&pin=m:accuracy&sort=-m:accuracy")
    assert fake.calls == [("list", "")]
    text = fragment.text
    assert "<html" not in text
    assert text.index("cnn-v3") < text.index("cnn-v4") < text.index("mlp-v1")  # accuracy descending
    assert '<th data-col="m:accuracy" draggable="true" class="pinned">' in text
    assert text.index('data-col="m:accuracy"') < text.index('data-col="name"')  # pinned first


def test_the_view_in_the_url_is_kept_by_the_filter_form_and_the_poll(fake: FakeClient):
    page = console(fake).get("/?cols=name,phase&pin=phase&sort=name&phase=Succeeded").text
    assert '<input type="hidden" name="cols" value="name,phase">' in page
    assert '<input type="hidden" name="pin" value="phase">' in page
    assert (
        'hx-get="http://testserver/rows?cols=name,phase&amp;pin=phase&amp;sort=name&amp;phase=Succeeded"'
        in page
    )
    assert "mlp-v1" not in page  # filtered out: Running
    assert "2 of 3 evaluations" in page


def test_all_namespaces_adds_the_namespace_column(fake: FakeClient):
    page = console(fake, all_namespaces=True).get("/").text
    assert ">NAMESPACE</a>" in page and "all namespaces" in page


def test_an_unreachable_cluster_keeps_the_last_list_and_says_so(fake: FakeClient):
    browser = console(fake)
    assert "cnn-v3" in browser.get("/rows").text
    fake.fail_with = ClusterUnreachable("cannot reach the Kubernetes API at https://127.0.0.1:6443")
    answer = browser.get("/rows")
    assert answer.status_code == 200
    assert "Cluster unreachable: cannot reach the Kubernetes API" in answer.text
    assert "showing the list of 2026-11-26T12:00:00Z" in answer.text
    assert "cnn-v3" in answer.text
    fake.fail_with = None
    assert "Cluster unreachable" not in browser.get("/rows").text


def test_a_forbidden_list_says_what_to_ask_for(fake: FakeClient):
    fake.fail_with = Forbidden(
        "evaluations is forbidden (ask a cluster admin for an RBAC role that allows it)"
    )
    answer = console(fake).get("/")
    assert answer.status_code == 403
    assert "Forbidden:</strong> evaluations is forbidden (ask a cluster admin" in answer.text
    assert "Traceback" not in answer.text


# --- compare ------------------------------------------------------------------------------------------


COMPARED = "/compare?e=team-a/cnn-v3&e=team-a/cnn-v4&e=team-a/mlp-v1"


def test_compare_shows_one_row_per_fact_and_coloured_deltas(fake: FakeClient):
    page = console(fake).get(COMPARED).text
    assert '<span class="badge">baseline</span>' in page
    assert '<td class="trend-down">0.97 <span class="mark">▼-0.0212</span></td>' in page
    assert "<th>sys/duration</th>" in page and "<th>recall</th>" in page
    assert 'href="?e=team-a/cnn-v3&amp;e=team-a/cnn-v4&amp;e=team-a/mlp-v1&amp;base=team-a/cnn-v4"' in page


def test_compare_with_another_baseline_and_only_differences(fake: FakeClient):
    page = console(fake).get(COMPARED + "&base=team-a/cnn-v4&diff=1").text
    assert page.index("cnn-v4</a>") < page.index("cnn-v3</a>")  # the baseline's column comes first
    assert '<td class="trend-up">0.9912 <span class="mark">▲+0.0212</span></td>' in page
    assert "<th>sys/pool</th>" not in page  # the same everywhere
    assert "☑ only rows that differ" in page


@pytest.mark.parametrize(
    ("fmt", "media", "start"),
    [
        ("csv", "text/csv", "key,cnn-v3,cnn-v4,cnn-v4 delta"),
        ("md", "text/markdown", "| key | cnn-v3 (baseline) |"),
    ],
)
def test_exports_use_the_sdk_renderers(fake: FakeClient, fmt: str, media: str, start: str):
    answer = console(fake).get(f"/compare/export.{fmt}?e=team-a/cnn-v3&e=team-a/cnn-v4")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(media)
    assert answer.text.startswith(start)


def test_json_export(fake: FakeClient):
    data = json.loads(
        console(fake).get("/compare/export.json?e=team-a/cnn-v3&e=team-a/cnn-v4&base=team-a/cnn-v4").text
    )
    assert data["baseline"] == "cnn-v4"
    assert data["rows"][0]["values"]["cnn-v3"]["trend"] == "up"


def test_compare_without_ticks_or_with_a_missing_evaluation_says_so(fake: FakeClient):
    browser = console(fake)
    nothing = browser.get("/compare")
    assert nothing.status_code == 422 and "tick one or more evaluations" in nothing.text
    ghost = browser.get("/compare?e=team-a/ghost")
    assert (
        ghost.status_code == 404
        and "evaluation &#39;ghost&#39; in namespace &#39;team-a&#39; not found" in ghost.text
    )
    assert browser.get("/compare/export.csv?e=team-a/ghost").status_code == 404
    assert browser.get("/compare/export.xls?e=team-a/cnn-v3").status_code == 404


# --- details ------------------------------------------------------------------------------------------


def test_details_header_summary_and_conditions(fake: FakeClient):
    page = console(fake).get("/e/team-a/cnn-v3").text
    for shown in (
        "<dd>mnist-cnn:v3</dd>",
        "<dd>mnist-test:v1</dd>",
        "<dd>pytorch:2.4</dd>",
        "<dd>a100</dd>",
        "1.27 / 40.00 USD",
        "<dd>2026-11-26T11:00:00Z</dd>",
        "<dd>2026-11-26T11:03:30Z</dd>",
        "<dd>2m30s</dd>",
        "<tr><th>accuracy</th><td>0.9912</td></tr>",
        "<td>AllTasksSucceeded</td>",
        "3 of 3 tasks succeeded",
    ):
        assert shown in page, shown
    assert "<button" not in page  # nothing to cancel once it succeeded
    assert 'id="live">' in page  # finished: no polling


def test_details_of_a_running_debug_evaluation(fake: FakeClient):
    page = console(fake).get("/e/team-a/mlp-v1").text
    assert "kubectl port-forward -n team-a svc/mlp-v1-debug 8000" in page
    assert "password: Secret mlp-v1-debug" in page
    assert ">Suspend</button>" in page and ">Cancel</button>" in page and ">Resume</button>" not in page
    assert 'hx-trigger="every 5s" hx-select="#live"' in page


def test_buttons_call_the_sdk_and_return_to_the_details(fake: FakeClient):
    browser = console(fake)
    for action in ("cancel", "suspend", "resume"):
        answer = browser.post(f"/e/team-a/mlp-v1/{action}", headers={"Origin": f"http://{HOST}"})
        assert answer.status_code == 303 and answer.headers["location"] == "/e/team-a/mlp-v1"
        assert (action, "mlp-v1") in fake.calls
    assert browser.post("/e/team-a/mlp-v1/delete").status_code == 404


def test_a_rejected_action_shows_the_message_on_the_details(fake: FakeClient):
    browser = console(fake)
    fake.fail_with = Invalid("admission webhook denied the request: spec.cancel cannot be unset")
    answer = browser.post("/e/team-a/mlp-v1/resume")
    fake.fail_with = None
    page = browser.get(answer.headers["location"]).text
    assert "admission webhook denied the request: spec.cancel cannot be unset" in page


def test_tasks_tab_lists_every_attempt_with_a_log_link(fake: FakeClient):
    page = console(fake).get("/e/team-a/cnn-v3?tab=tasks").text
    assert "<td>cnn-v3-predict-1-a</td>" in page and "<td>cnn-v3-predict-1-b</td>" in page
    assert "<td>12</td>" in page  # the failed first attempt's exit code
    assert 'hx-get="http://testserver/e/team-a/cnn-v3/log?step=predict&amp;task=1&amp;attempt=2"' in page


def test_the_log_of_one_attempt(fake: FakeClient):
    browser = console(fake)
    fragment = browser.get("/e/team-a/cnn-v3/log?step=predict&task=1&attempt=2").text
    assert "<pre>loading model\ndone\n</pre>" in fragment
    assert "hx-trigger" not in fragment  # it ended: nothing to follow
    latest = browser.get("/e/team-a/cnn-v3/log?step=predict&task=1").text
    assert "predict/1 attempt 2" in latest
    missing = browser.get("/e/team-a/cnn-v3/log?step=evaluate")
    assert missing.status_code == 404 and "no task evaluate/*; tasks with pods: predict/1" in missing.text


def test_a_missing_evaluation_is_a_not_found_page(fake: FakeClient):
    answer = console(fake).get("/e/team-a/ghost")
    assert answer.status_code == 404 and "NotFound:</strong> evaluation" in answer.text


def test_a_bug_shows_no_traceback(fake: FakeClient, monkeypatch: pytest.MonkeyPatch):
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(fake, "get", broken)
    browser = console(fake, raise_server_exceptions=False)
    answer = browser.get("/e/team-a/cnn-v3")
    assert answer.status_code == 500
    assert "secret internals" not in answer.text and "see the terminal" in answer.text


# --- the Results tab ---------------------------------------------------------------------------------------


def test_the_results_tab_shows_a_page_of_records_with_labels_and_whether_they_agree(fake: FakeClient):
    page = console(fake).get("/e/team-a/cnn-v3?tab=results&limit=25")
    assert page.status_code == 200
    assert page.text.count('<tr class="wrong">') == 2  # records 4 and 9
    assert "records 1..12" in page.text and "12 evaluated" in page.text
    assert "next →" not in page.text and 'hx-trigger="every 5s"' not in page.text  # no reader pod per poll


def test_only_the_wrong_ones_and_paging_go_through_the_url(fake: FakeClient):
    browser = console(fake)
    wrong = browser.get("/e/team-a/cnn-v3?tab=results&wrong=1")
    assert wrong.text.count("<tr class=") == 2 and "wrong records 1..2" in wrong.text
    first = browser.get("/e/team-a/cnn-v3?tab=results&limit=25&offset=0")
    assert "← previous" not in first.text
    fake_page = browser.get("/e/team-a/cnn-v3?tab=results&limit=5&offset=5")
    assert "records 6..10" in fake_page.text
    assert "?tab=results&amp;limit=5" in fake_page.text  # previous: back to offset 0
    assert "?tab=results&amp;offset=10&amp;limit=5" in fake_page.text


def test_the_confusion_matrix_is_a_picture_whose_cells_filter_the_table(fake: FakeClient):
    browser = console(fake)
    page = browser.get("/e/team-a/cnn-v3?tab=results")
    assert '<svg class="matrix"' in page.text and "label 1, predicted 2: 1" in page.text
    assert "?tab=results&amp;label=1&amp;prediction=2" in page.text
    cell = browser.get("/e/team-a/cnn-v3?tab=results&label=1&prediction=2")
    assert cell.text.count('<tr class="wrong">') == 1 and ">4</td>" in cell.text  # record 4: 1 → 2
    assert "<th>PRECISION</th>" in page.text and "0.75" in page.text  # the per-class table


def test_an_evaluation_without_results_says_so_in_the_tab(fake: FakeClient):
    page = console(fake).get("/e/team-a/mlp-v1?tab=results")
    assert page.status_code == 200 and "has no results yet" in page.text
    assert "Summary metrics" not in page.text


# --- read-only (the in-cluster console) -------------------------------------------------------------------


def test_a_read_only_console_shows_everything_and_offers_no_change(fake: FakeClient):
    browser = console(fake, read_only=True)
    listing = browser.get("/")
    assert listing.status_code == 200 and "read-only" in listing.text and ">Create</a>" not in listing.text
    details = browser.get("/e/team-a/mlp-v1")  # running: the full console offers suspend and cancel
    assert details.status_code == 200 and "/suspend" not in details.text and "/cancel" not in details.text
    assert browser.get("/e/team-a/cnn-v3?tab=results").status_code == 200
    for path in ("/e/team-a/mlp-v1/cancel", "/e/team-a/mlp-v1/suspend", "/create", "/create/quote"):
        assert browser.post(path).status_code in (404, 405), path
    assert browser.get("/create").status_code == 404
    assert not [call for call, _ in fake.calls if call in ("cancel", "suspend", "resume", "create")]
    full = console(FakeClient())
    assert "/suspend" in full.get("/e/team-a/mlp-v1").text  # what read-only leaves out
    assert ">Create</a>" in full.get("/").text


def test_details_say_which_tool_created_the_evaluation(fake: FakeClient):
    made = raw_evaluation("cnn-v9")
    made["metadata"]["managedFields"] = MANAGED_FIELDS
    fake.evaluations.insert(0, Evaluation.model_validate(made))
    page = console(fake).get("/e/team-a/cnn-v9").text
    assert '<dt>Created with</dt><dd class="created-with"' in page
    assert ">kubectl-create</dd>" in page
    assert ">—</dd>" in console(fake).get("/e/team-a/cnn-v3").text  # no managedFields: nothing claimed

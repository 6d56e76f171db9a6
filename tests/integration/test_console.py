"""The web console (`assay ui`) against the real cluster, over HTTP: the operator ran three evaluations on
KWOK nodes (one task retried, one running in debug mode), and the console shows them as the CLI does."""

from __future__ import annotations

import base64
import csv
import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
import yaml
from cli_scenarios import NO_LOGS, World, create_namespace
from console_server import Console, running_console
from kubernetes import client
from results_scenarios import finished_evaluation, write_output
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from assay import Client
from assay.api import EVALUATION_SET_PLURAL, GROUP, VERSION
from support import ci, wait_until


@pytest.fixture(scope="module")
def console(kube: Path, world: World) -> Iterator[Console]:
    with running_console(kube, world.namespace) as served:
        yield served


def test_without_the_token_nothing_is_served(console: Console):
    stranger = httpx.get(console.base + "/")
    assert stranger.status_code == 403
    assert console.http.get("/", headers={"Host": "attacker.example"}).status_code == 403


def test_the_list_shows_the_evaluations_newest_first(console: Console, world: World):
    page = console.http.get("/").text
    assert page.index(">mlp-v1<") < page.index(">cnn-v4<") < page.index(">cnn-v3<")
    rows = console.http.get("/rows?cols=name,phase,m:accuracy&sort=-m:accuracy").text
    assert rows.index(">cnn-v4<") < rows.index(">cnn-v3<")  # accuracy 0.97 before 0.95
    assert "<td>0.97</td>" in rows.replace('class="" ', "").replace('<td class="">', "<td>")
    assert rows.count("Succeeded") == 2 and "Running" in rows
    running_only = console.http.get("/rows?phase=Running").text
    assert ">mlp-v1<" in running_only and ">cnn-v3<" not in running_only


def test_compare_and_its_exports(console: Console, world: World):
    refs = f"e={world.namespace}/cnn-v3&e={world.namespace}/cnn-v4&e={world.namespace}/mlp-v1"
    page = console.http.get(f"/compare?{refs}&base={world.namespace}/cnn-v4").text
    assert page.index("cnn-v4</a>") < page.index("cnn-v3</a>")
    assert '<td class="trend-down">0.95 <span class="mark">▼-0.02</span></td>' in page
    exported = console.http.get(f"/compare/export.csv?{refs}").text
    table = {row[0]: row for row in csv.reader(io.StringIO(exported))}
    assert table["key"][:2] == ["key", "cnn-v3"]
    assert table["accuracy"][1:4] == ["0.95", "0.97", "+0.02"]


def test_details_tasks_and_logs(console: Console, world: World, kube: Path):
    page = console.http.get(f"/e/{world.namespace}/cnn-v4").text
    assert "Succeeded" in page and "<dd>" + world.pool + "</dd>" in page
    tasks = console.http.get(f"/e/{world.namespace}/cnn-v4?tab=tasks").text
    first, retry = world.pods["cnn-v4"][("predict", 1)]
    assert f"<td>{first}</td>" in tasks and f"<td>{retry}</td>" in tasks
    assert "<td>12</td>" in tasks  # the first attempt's exit code
    log = console.http.get(f"/e/{world.namespace}/cnn-v4/log?step=predict&task=1&attempt=1")
    if not world.logs_served:
        assert log.status_code == 422 and first in log.text
        pytest.skip(NO_LOGS)
    assert "CUDA error: device-side assert triggered" in log.text


def test_a_missing_evaluation_is_explained(console: Console, world: World):
    ghost = console.http.get(f"/e/{world.namespace}/ghost")
    assert ghost.status_code == 404 and "not found" in ghost.text and "Traceback" not in ghost.text


def _form(world: World, name: str, **changes: str) -> dict[str, str]:
    """The create form filled in as cli_scenarios.manifest() would write it (tasks that run on KWOK)."""
    return {
        "namespace": world.namespace,
        "name": name,
        "pool": world.pool,
        "model": "cnn",
        "model_version": "v9",
        "model_uri": "file:///models/m",
        "handler": "mnist_eval:MNISTEvaluator",
        "dataset": "mnist-test",
        "dataset_version": "v1",
        "dataset_uri": "file:///data/mnist",
        "runtime_image": "assay-runner:fake",
        "tasks": "2",
        **changes,
    }


def test_create_shows_the_operators_price_then_creates(console: Console, world: World, kube: Path):
    # The pool prices cpu at 0.50/h and gives each task 1 cpu: two tasks cost 1.00 an hour, and at most
    # 1.00 since they are released after the default hour.
    fragment = console.http.post("/create/quote", data=_form(world, "made-here")).text
    assert "<strong>1.00 USD/hour</strong> for 2 tasks (cpu=1 each)" in fragment
    assert "at most <strong>1.00 USD</strong> (auto-released after 1h)" in fragment
    answer = console.http.post("/create", data=_form(world, "made-here"))
    assert answer.status_code == 303 and answer.headers["location"] == f"/e/{world.namespace}/made-here"
    with Client(kube, namespace=world.namespace) as sdk:
        made = sdk.get("made-here")
        assert made.spec.tasks == 2 and made.spec.model.version == "v9"

        def estimated() -> str | None:
            cost = sdk.get("made-here").status.cost
            return cost.estimated_max if cost is not None else None

        # The operator's own estimate is the quote the form showed.
        assert wait_until(estimated, timeout=60, what="the operator's estimate") == "1.00"
        assert console.http.post(f"/e/{world.namespace}/made-here/cancel").status_code == 303
        assert sdk.get("made-here").spec.cancel is True


def test_a_create_the_server_rejects_keeps_the_form_and_shows_why(console: Console, world: World):
    # Not a valid Kubernetes name: the API server refuses it, and says why.
    answer = console.http.post("/create", data=_form(world, "Not_A_Name"))
    assert answer.status_code == 422
    assert "metadata.name: Invalid value: &#34;Not_A_Name&#34;" in answer.text
    assert 'value="Not_A_Name"' in answer.text
    assert "Traceback" not in answer.text


PASSWORD = "a debug password of my own"


def test_debug_mode_with_ones_own_password(
    console: Console, world: World, kube: Path, core_v1: client.CoreV1Api
):
    answer = console.http.post(
        "/create", data=_form(world, "own-password", debug="on", debug_password=PASSWORD)
    )
    assert answer.status_code == 303, answer.text
    with Client(kube, namespace=world.namespace) as sdk:
        made = sdk.get("own-password")
        assert made.spec.debug is not None and made.spec.debug.password_secret_ref is not None
        secret_name = made.spec.debug.password_secret_ref.name
        assert secret_name.startswith("own-password-debug-password-")
        secret = core_v1.read_namespaced_secret(secret_name, world.namespace)
        assert base64.b64decode((secret.data or {})["password"]).decode() == PASSWORD
        owners = [(o.kind, o.name, o.uid) for o in secret.metadata.owner_references or []]
        assert owners == [("Evaluation", "own-password", made.metadata.uid)]

        def named_in_status() -> str | None:
            debug = sdk.get("own-password").status.debug
            return debug.password_secret if debug is not None else None

        assert wait_until(named_in_status, timeout=60, what="the Secret in status.debug") == secret_name
        page = console.http.get(f"/e/{world.namespace}/own-password").text
        assert PASSWORD not in page
        assert '<dd class="created-with"' in page and ">assay</dd>" in page  # the SDK's field manager
        # The Secret is the Evaluation's: deleting the Evaluation deletes it (the garbage collector).
        sdk.cancel("own-password")
        sdk.delete("own-password")

        def secret_gone() -> bool:
            found = core_v1.list_namespaced_secret(
                world.namespace, field_selector=f"metadata.name={secret_name}"
            )
            return not found.items

        assert wait_until(secret_gone, timeout=60, what="the Secret deleted with its Evaluation")


def test_a_refused_debug_evaluation_leaves_no_secret(
    console: Console, world: World, core_v1: client.CoreV1Api
):
    answer = console.http.post(
        "/create", data=_form(world, "Not_A_Name", debug="on", debug_password=PASSWORD)
    )
    assert answer.status_code == 422 and "metadata.name: Invalid value" in answer.text
    assert PASSWORD not in answer.text
    secrets = core_v1.list_namespaced_secret(world.namespace)
    assert not [s.metadata.name for s in secrets.items if s.metadata.name.startswith("Not_A_Name")]
    short = console.http.post("/create", data=_form(world, "short-pw", debug="on", debug_password="short"))
    assert short.status_code == 422 and "debug password: 5 characters; it needs at least 16" in short.text


# --- in a real browser (Chromium from Debian's packages, installed by hack/install-browser.sh) -------------

# Every run takes the screenshots; `make screenshots` (ASSAY_SCREENSHOTS=docs/console) refreshes the README's,
# so a plain test run leaves the work tree as it was.
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / os.environ.get("ASSAY_SCREENSHOTS", ".cluster/screenshots")
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
EXAMPLE_SET = REPO / "examples" / "digits-matrix" / "evaluationset.yaml"


@pytest.fixture(scope="module")
def browser(console: Console) -> Iterator[webdriver.Chrome]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        ci.missing(
            f"no browser: {', '.join(missing)} missing (hack/install-browser.sh installs them as root)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.implicitly_wait(0)
    try:
        driver.get(console.url)  # the token sets the cookie, then the list without it
        yield driver
    finally:
        driver.quit()


def _wait(driver: webdriver.Chrome, what: str, condition: Callable[[webdriver.Chrome], object]) -> object:
    return WebDriverWait(driver, 20).until(condition, message=f"waiting for {what}")


def _menu(driver: webdriver.Chrome, entry: str, link: str) -> None:
    """Open the column menu and click the ``link`` (toggle, pin) of the entry whose toggle reads ``entry``."""
    driver.find_element(By.CSS_SELECTOR, "#column-menu summary").click()
    row = f"//details[@id='column-menu']//li[a[contains(@class,'toggle')][normalize-space()='{entry}']]"
    driver.find_element(By.XPATH, f"{row}/a[contains(@class,'{link}')]").click()


def _shot(driver: webdriver.Chrome, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


@pytest.mark.browser
def test_browser_list_columns_survive_a_reload(browser: webdriver.Chrome, console: Console):
    browser.get(console.base + "/")
    _wait(browser, "the list", lambda d: d.find_elements(By.LINK_TEXT, "cnn-v4"))
    _menu(browser, "☐ accuracy", "toggle")  # show the metric column
    _wait(
        browser,
        "the accuracy column",
        lambda d: d.find_elements(By.CSS_SELECTOR, 'th[data-col="m:accuracy"]'),
    )
    _menu(browser, "☑ accuracy", "pin")
    _menu(browser, "☑ AGE", "toggle")  # hide AGE
    _wait(browser, "AGE hidden", lambda d: not d.find_elements(By.CSS_SELECTOR, 'th[data-col="age"]'))
    browser.refresh()
    headers = [
        th.get_attribute("data-col")
        for th in browser.find_elements(By.CSS_SELECTOR, "table.list th[data-col]")
    ]
    assert headers[0] == "m:accuracy" and "age" not in headers
    assert "pinned" in (
        browser.find_element(By.CSS_SELECTOR, 'th[data-col="m:accuracy"]').get_attribute("class") or ""
    )
    assert "pin=m:accuracy" in browser.current_url
    _shot(browser, "list")


@pytest.mark.browser
def test_browser_compare_three_below_the_list_change_baseline_only_differences(
    browser: webdriver.Chrome, console: Console, world: World
):
    browser.get(console.base + "/")
    _wait(browser, "the list", lambda d: d.find_elements(By.LINK_TEXT, "cnn-v4"))
    for name in ("cnn-v3", "cnn-v4", "mlp-v1"):
        browser.find_element(By.CSS_SELECTOR, f'input[value="{world.namespace}/{name}"]').click()
    # The table refreshes every few seconds; the ticks must survive it.
    stamp = browser.find_element(By.CSS_SELECTOR, ".count .updated").text
    _wait(
        browser,
        "a refresh of the table",
        lambda d: d.find_element(By.CSS_SELECTOR, ".count .updated").text != stamp,
    )
    assert len(browser.find_elements(By.CSS_SELECTOR, 'input[name="e"]:checked')) == 3
    browser.find_element(By.XPATH, "//button[text()='Compare below']").click()
    pane = _wait(browser, "the compare pane", lambda d: d.find_elements(By.ID, "compare-pane"))
    assert isinstance(pane, list)
    assert pane[0].value_of_css_property("resize") == "vertical"  # drag its corner to resize
    assert browser.find_elements(By.LINK_TEXT, "cnn-v4")  # the list is still there, above it
    browser.switch_to.frame("compare")
    _wait(browser, "the comparison", lambda d: "Compare 3 evaluations" in d.page_source)
    browser.find_element(By.XPATH, "//th[.//a[text()='cnn-v4']]//a[text()='make baseline']").click()
    _wait(
        browser,
        "cnn-v4 as the baseline",
        lambda d: d.find_elements(By.XPATH, "//th[contains(@class,'baseline')]//a[text()='cnn-v4']"),
    )
    browser.find_element(By.PARTIAL_LINK_TEXT, "only rows that differ").click()
    _wait(browser, "only the differences", lambda d: "☑ only rows that differ" in d.page_source)
    keys = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "table.compare tbody th")]
    assert "accuracy" in keys and "sys/pool" not in keys
    browser.switch_to.default_content()
    # What changed in the pane is in the list's URL: a reload (or a shared link) shows the same.
    _wait(browser, "the baseline in the URL", lambda d: "diff=1" in d.current_url)
    assert f"base={world.namespace}/cnn-v4" in browser.current_url.replace("%2F", "/")
    _shot(browser, "compare")
    browser.refresh()
    assert len(browser.find_elements(By.CSS_SELECTOR, 'input[name="e"]:checked')) == 3
    browser.switch_to.frame("compare")
    _wait(
        browser,
        "the same comparison after a reload",
        lambda d: d.find_elements(By.XPATH, "//th[contains(@class,'baseline')]//a[text()='cnn-v4']"),
    )
    browser.switch_to.default_content()
    browser.find_element(By.CSS_SELECTOR, "#compare-pane a.full").click()
    _wait(browser, "the comparison full screen", lambda d: "/compare?" in d.current_url)
    assert "☑ only rows that differ" in browser.page_source


@pytest.mark.browser
def test_browser_details_beside_the_list_then_full_screen(
    browser: webdriver.Chrome, console: Console, world: World
):
    browser.get(console.base + "/")
    _wait(browser, "the list", lambda d: d.find_elements(By.LINK_TEXT, "cnn-v4"))
    browser.find_element(By.LINK_TEXT, "cnn-v4").click()
    _wait(browser, "the details pane", lambda d: d.find_elements(By.ID, "details-pane"))
    pane = browser.find_element(By.ID, "details-pane")
    listing = browser.find_element(By.CSS_SELECTOR, ".list-pane")
    assert pane.location["x"] > listing.location["x"] + listing.size["width"] / 2  # beside, not below
    assert 0.35 < pane.size["width"] / browser.get_window_size()["width"] < 0.6  # about half the screen
    browser.switch_to.frame("details")
    _wait(browser, "the details in the pane", lambda d: "Summary metrics" in d.page_source)
    assert not browser.find_element(By.CSS_SELECTOR, "header.top").is_displayed()  # no second header
    browser.find_element(By.LINK_TEXT, "Tasks & logs").click()
    _wait(browser, "the tasks tab", lambda d: d.find_elements(By.LINK_TEXT, "view"))
    browser.switch_to.default_content()
    _wait(browser, "the tab in the list's URL", lambda d: "tab%3Dtasks" in d.current_url)
    _shot(browser, "beside")
    # The list is still usable beside it: a sort keeps the pane open.
    browser.find_element(By.CSS_SELECTOR, 'th[data-col="name"] a').click()
    _wait(browser, "sorted by name", lambda d: "sort=name" in d.current_url)
    assert browser.find_elements(By.ID, "details-pane")
    browser.find_element(By.CSS_SELECTOR, "#details-pane a.full").click()
    _wait(
        browser,
        "the details full screen",
        lambda d: f"/e/{world.namespace}/cnn-v4?tab=tasks" in d.current_url,
    )
    assert browser.find_element(By.CSS_SELECTOR, "header.top").is_displayed()


@pytest.mark.browser
def test_browser_details_and_a_log(browser: webdriver.Chrome, console: Console, world: World):
    browser.get(console.base + f"/e/{world.namespace}/cnn-v4")
    _wait(browser, "the details", lambda d: "Summary metrics" in d.page_source)
    _shot(browser, "details")
    browser.find_element(By.LINK_TEXT, "Tasks & logs").click()
    links = _wait(browser, "the tasks", lambda d: d.find_elements(By.LINK_TEXT, "view"))
    assert isinstance(links, list)
    browser.find_element(By.CSS_SELECTOR, "a[hx-get*='step=predict&task=1&attempt=1']").click()
    _wait(browser, "the log", lambda d: d.find_elements(By.CSS_SELECTOR, "#log .log, #log .banner"))
    if world.logs_served:
        assert "CUDA error" in browser.find_element(By.CSS_SELECTOR, "#log pre").text
    _shot(browser, "tasks")


@pytest.fixture(scope="module")
def results_console(
    kube: Path, api_client: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Console, str]]:
    """A console on a namespace of its own, holding a finished evaluation whose results are in a
    file:// output the runner's writer produced (no operator there: its status is written as the operator
    writes it)."""
    core = client.CoreV1Api(api_client)
    namespace = create_namespace(core, "console-results")
    try:
        output = write_output(tmp_path_factory.mktemp("results") / "run")
        finished_evaluation(client.CustomObjectsApi(api_client), namespace, "digits-svc", output.as_uri())
        set_with_one_child(client.CustomObjectsApi(api_client), namespace, "digits-svc")
        with running_console(kube, namespace) as served:
            yield served, namespace
    finally:
        core.delete_namespace(namespace, propagation_policy="Background")


def set_with_one_child(custom: client.CustomObjectsApi, namespace: str, child: str) -> None:
    """The example's EvaluationSet, its status a one-cell table naming ``child`` as the operator writes it
    (no operator in this namespace: it would create the children)."""
    body = yaml.safe_load(EXAMPLE_SET.read_text())
    body["metadata"]["namespace"] = namespace
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, EVALUATION_SET_PLURAL, body)
    cell = {
        "column": "digits-svc@v1",
        "evaluation": child,
        "phase": "Succeeded",
        "value": 0.7,
        "baseline": True,
    }
    status = {
        "phase": "Succeeded",
        "progress": "1/1",
        "table": {
            "metric": "accuracy",
            "columns": ["digits-svc@v1"],
            "rows": [{"dataset": "digits-test@v1", "cells": [cell]}],
        },
    }
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, EVALUATION_SET_PLURAL, body["metadata"]["name"], {"status": status}
    )


def test_the_sets_pages(results_console: tuple[Console, str]):
    served, namespace = results_console
    listing = served.http.get("/sets").text
    assert f'href="/s/{namespace}/digits-matrix"' in listing.replace(served.base, "")
    assert "<td>1/1</td>" in listing
    page = served.http.get(f"/s/{namespace}/digits-matrix").text
    assert "accuracy by dataset and model" in page and '<span class="badge">baseline</span>' in page
    assert f"open={namespace}/digits-svc" in page  # the cell opens the child beside the list
    compare = f"?set=digits-matrix&amp;e={namespace}/digits-svc&amp;base={namespace}/digits-svc"
    assert compare in page


@pytest.mark.browser
def test_browser_results_only_the_wrong_ones_and_a_matrix_cell(
    browser: webdriver.Chrome, results_console: tuple[Console, str]
):
    served, namespace = results_console
    browser.get(served.url)  # this console's own token
    browser.get(served.base + f"/e/{namespace}/digits-svc")
    browser.find_element(By.LINK_TEXT, "Results").click()
    _wait(browser, "the results", lambda d: d.find_elements(By.CSS_SELECTOR, "table.results-table tbody tr"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "table.results-table tbody tr")) == 10
    assert browser.find_elements(By.CSS_SELECTOR, "svg.matrix rect")  # the confusion matrix, drawn
    browser.find_element(By.NAME, "wrong").click()  # submits the filter
    _wait(browser, "only the wrong ones", lambda d: "wrong=1" in d.current_url)
    records = [
        row.find_elements(By.TAG_NAME, "td")[0].text
        for row in browser.find_elements(By.CSS_SELECTOR, "table.results-table tbody tr")
    ]
    assert records == ["2", "5", "7"]
    _shot(browser, "results")
    # The matrix cell "label 1, predicted 2" holds record 7 alone.
    browser.find_element(By.CSS_SELECTOR, "svg.matrix a[href*='label=1&prediction=2']").click()
    _wait(browser, "the cell's records", lambda d: "prediction=2" in d.current_url)
    cells = browser.find_elements(By.CSS_SELECTOR, "table.results-table tbody tr td")
    assert [c.text for c in cells] == ["7", "1", "2", "✗"]


@pytest.mark.browser
def test_browser_follow_a_running_log(browser: webdriver.Chrome, console: Console, world: World):
    browser.get(console.base + f"/e/{world.namespace}/mlp-v1?tab=tasks")
    running = world.pods["mlp-v1"][("predict", 1)][-1]
    browser.find_element(By.XPATH, f"//tr[td[text()='{running}']]//a[text()='view']").click()
    title = _wait(browser, "the log", lambda d: d.find_elements(By.CSS_SELECTOR, "#log .log-title"))
    assert isinstance(title, list) and "following" in title[0].text
    if world.logs_served:
        assert (
            browser.find_element(By.CSS_SELECTOR, "#log pre").text.strip() == world.log_lines[running].strip()
        )


@pytest.mark.browser
def test_browser_create_after_reading_the_price_then_cancel(
    browser: webdriver.Chrome, console: Console, world: World, kube: Path
):
    browser.get(console.base + "/create")
    # Before anything is typed the quote is there already: a price, or what the form still lacks.
    _wait(browser, "the quote on page load", lambda d: d.find_element(By.ID, "quote").text.strip())
    for field, value in _form(world, "made-in-browser").items():
        element = browser.find_element(By.NAME, field)
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        else:
            element.clear()
            element.send_keys(value)
    _wait(browser, "the price", lambda d: "1.00 USD/hour" in d.find_element(By.ID, "quote").text)
    assert "at most 1.00 USD" in browser.find_element(By.ID, "quote").text
    _shot(browser, "create")
    browser.find_element(By.XPATH, "//button[text()='Submit']").click()
    _wait(browser, "the new evaluation's details", lambda d: d.current_url.endswith("/made-in-browser"))
    browser.find_element(By.XPATH, "//button[text()='Cancel']").click()
    browser.switch_to.alert.accept()
    _wait(browser, "Cancelled", lambda d: "Cancelled" in d.find_element(By.CSS_SELECTOR, "h1").text)
    with Client(kube, namespace=world.namespace) as sdk:
        assert sdk.get("made-in-browser").spec.cancel is True


# Last: suspending mlp-v1 stops the running task the tests above read.
def test_debug_details_and_suspend_resume(
    console: Console, world: World, kube: Path, core_v1: client.CoreV1Api
):
    page = console.http.get(f"/e/{world.namespace}/mlp-v1").text
    assert f"kubectl port-forward -n {world.namespace} svc/" in page and "password: Secret" in page
    with Client(kube, namespace=world.namespace) as sdk:
        status = sdk.get("mlp-v1").status
        assert status.debug is not None and status.debug.password_secret
        secret = core_v1.read_namespaced_secret(status.debug.password_secret, world.namespace)
        for value in (secret.data or {}).values():
            assert base64.b64decode(value).decode() not in page  # never the password
        answer = console.http.post(f"/e/{world.namespace}/mlp-v1/suspend")
        assert answer.status_code == 303
        assert sdk.get("mlp-v1").spec.suspend is True
        assert console.http.post(f"/e/{world.namespace}/mlp-v1/resume").status_code == 303
        assert sdk.get("mlp-v1").spec.suspend is False

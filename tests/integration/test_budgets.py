"""Pool budgets on the real cluster: fake pods held Running, a price of 1 USD a second per task.

Each test's pool prices cpu at 3600 USD an hour and every task asks for one cpu, so money runs out within
seconds. Most budgets here have interval None (one window). The rollover test moves a Weekly budget's
``start`` so that its window ends seconds later: the real operator, on the real clock, must wake itself at
the boundary (nothing else changes then) and release the waiting Evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from operators import OperatorProcess
from test_admission_crds import rejection
from test_operator import (  # noqa: F401 (fixtures)
    TIMEOUT,
    Evaluations,
    condition,
    evaluations,
    jobs_of,
    make_pool,
    operator,
    pool_condition,
    selector,
)

from assay.api import GROUP, POOL_PLURAL, VERSION
from assay.contract import result_message
from support import FakePods, wait_until

PER_SECOND = {"currency": "USD", "perHour": {"cpu": "3600"}}  # 1 USD a second for a one-cpu task


def budget(name: str = "team", **fields: Any) -> dict[str, Any]:
    return {"name": name, "interval": "None", **fields}


class Pools:
    def __init__(self, api: client.CustomObjectsApi) -> None:
        self.api = api

    def get(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.api.get_cluster_custom_object(GROUP, VERSION, POOL_PLURAL, name)
        return found

    def budget(self, pool: str, name: str = "team") -> dict[str, Any]:
        shown = (self.get(pool).get("status") or {}).get("budgets") or []
        return next((b for b in shown if b["name"] == name), {})

    def set_budgets(self, pool: str, *budgets: dict[str, Any]) -> None:
        self.api.patch_cluster_custom_object(
            GROUP, VERSION, POOL_PLURAL, pool, {"spec": {"budgets": budgets}}
        )


@pytest.fixture
def pools(custom_objects: client.CustomObjectsApi) -> Pools:
    return Pools(custom_objects)


def shown(moment: datetime) -> str:
    """A moment as the API writes it (RFC 3339, whole seconds, Z)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def moment(shown: str) -> datetime:
    return datetime.fromisoformat(shown.replace("Z", "+00:00"))


def seconds_between(start: str, end: str) -> Decimal:
    return Decimal(str((moment(end) - moment(start)).total_seconds()))


@pytest.mark.usefixtures("assay_crds")
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"budgets": [budget(spendLimit="5")]}, "budgets are money in the pool's currency: set spec.pricing"),
        (
            {"pricing": PER_SECOND, "budgets": [budget(interval="Weekly", intervalDay=9, spendLimit="5")]},
            "intervalDay of a Weekly budget is an ISO weekday, 1 (Monday) to 7 (Sunday)",
        ),
        (
            {"pricing": PER_SECOND, "budgets": [budget(intervalDay=3, spendLimit="5")]},
            "a budget with interval None has no intervalDay",
        ),
        ({"pricing": PER_SECOND, "budgets": [budget(spendLimit="-5")]}, "spec.budgets[0].spendLimit"),
        (
            {
                "pricing": PER_SECOND,
                "budgets": [
                    budget(interval="Weekly", intervalDay=1, start="2026-03-02T09:00:00Z", spendLimit="5")
                ],
            },
            "a budget's windows start on intervalDay or at start, not both",
        ),
    ],
)
def test_a_budget_that_cannot_work_is_refused_with_what_to_fix(
    custom_objects: client.CustomObjectsApi, spec: dict[str, Any], expected: str
) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ResourcePool",
        "metadata": {"name": "refused-budget"},
    }
    message = rejection(
        lambda: custom_objects.create_cluster_custom_object(
            GROUP, VERSION, POOL_PLURAL, {**body, "spec": spec}
        )
    )
    assert expected in message


@pytest.mark.usefixtures("operator")
def test_an_evaluation_that_does_not_fit_waits_with_budget_exhausted_until_money_frees(
    make_pool: Callable[..., str],  # noqa: F811
    pools: Pools,
    evaluations: Evaluations,  # noqa: F811
    fake_pods: FakePods,
    batch_v1: client.BatchV1Api,
    namespace: str,
) -> None:
    pool = make_pool(pricing=PER_SECOND, budgets=[budget(spendLimit="50")])
    evaluations.create("big", pool, autoReleaseSeconds=60)  # at most 60 s x 1 USD
    queued = evaluations.wait_phase("big", "Queued")
    assert condition(queued, "Queued")["reason"] == "BudgetExhausted"
    assert queued["message"] == (
        f"waiting for budget in pool {pool}: budget team has 50.00 USD of 50.00 USD remaining, "
        "0.00 USD committed; it may cost 60.00 USD"
    )
    assert not jobs_of(batch_v1, namespace, "big")
    wait_until(lambda: pools.budget(pool).get("waiting") == 1, timeout=TIMEOUT, what="the budget's waiting")

    pools.set_budgets(pool, budget(spendLimit="200"))  # a raised limit releases it
    evaluations.wait_phase("big", "Running")
    fake_pods.wait_running(namespace, selector("big", "all"))
    # 200 minus what big spends and may still spend (60 in all) leaves less than 150.
    evaluations.create("second", pool, autoReleaseSeconds=150)
    second = evaluations.wait_phase("second", "Queued")
    assert condition(second, "Queued")["reason"] == "BudgetExhausted"
    assert "it may cost 150.00 USD" in second["message"]

    wait_until(
        lambda: evaluations.status("big").get("tasks", [{}])[0].get("startTime"),
        timeout=TIMEOUT,
        what="big's task start",
    )
    evaluations.patch_spec("big", cancel=True)  # what big committed frees; what it spent stays spent
    evaluations.wait_phase("second", "Running")
    big = evaluations.status("big")
    big_spent = seconds_between(big["tasks"][0]["startTime"], big["completionTime"])  # at 1 USD a second
    shown = wait_until(
        lambda: (b := pools.budget(pool)).get("waiting") == 0 and b, timeout=TIMEOUT, what="none waiting"
    )
    assert Decimal(shown["spent"]) >= big_spent - Decimal("0.01")  # second's few moments on top
    assert Decimal(shown["committed"]) <= Decimal("150")


@pytest.mark.usefixtures("operator")
def test_hold_and_drain_warns_then_suspends_running_work_and_a_raised_limit_resumes_it(
    make_pool: Callable[..., str],  # noqa: F811
    pools: Pools,
    evaluations: Evaluations,  # noqa: F811
    fake_pods: FakePods,
    batch_v1: client.BatchV1Api,
    core_v1: client.CoreV1Api,
    custom_objects: client.CustomObjectsApi,
    namespace: str,
) -> None:
    drain = budget(spendLimit="8", warnAt=[80], whenExhausted="HoldAndDrain")
    pool = make_pool(pricing=PER_SECOND, budgets=[drain])
    evaluations.create("forever", pool, autoReleaseSeconds=0)  # never released: charged as it runs
    fake_pods.wait_running(namespace, selector("forever", "all"))

    warning = wait_until(
        lambda: (c := pool_condition(custom_objects, pool, "BudgetWarning")).get("status") == "True" and c,
        timeout=TIMEOUT,
        what="condition BudgetWarning at 80 %",
    )
    assert warning["message"].startswith("budget team spent ")
    assert warning["message"].endswith(" of 8.00 USD (over 80 %)")

    def pool_events(reason: str) -> list[client.CoreV1Event]:
        found = core_v1.list_event_for_all_namespaces(field_selector=f"involvedObject.name={pool}").items
        return [e for e in found if e.reason == reason]

    (warned,) = wait_until(
        lambda: pool_events("BudgetWarning"), timeout=TIMEOUT, what="a BudgetWarning Event"
    )
    assert warned.type == "Warning" and warned.message.endswith("over 80 %")

    suspended = evaluations.wait_phase("forever", "Suspended")
    assert condition(suspended, "Suspended")["reason"] == "BudgetExhausted"
    assert "budget team is spent" in suspended["message"]
    assert (
        jobs_of(batch_v1, namespace, "forever")["forever-evaluate"].spec.suspend is True
    )  # kept, not deleted
    assert suspended["tasks"][0]["startTime"]  # the record stays
    exhausted = wait_until(
        lambda: (b := pools.budget(pool)).get("state") == "Exhausted" and b, timeout=TIMEOUT, what="Exhausted"
    )
    assert Decimal(exhausted["spent"]) >= Decimal("8.00")
    assert pool_condition(custom_objects, pool, "BudgetExhausted")["status"] == "True"
    assert len(pool_events("BudgetWarning")) == 1  # once per percentage

    pools.set_budgets(pool, {**drain, "spendLimit": "100000"})
    resumed = evaluations.wait_phase("forever", "Running")
    assert condition(resumed, "Suspended")["reason"] == "Resumed"
    assert jobs_of(batch_v1, namespace, "forever")["forever-evaluate"].spec.suspend is False
    fake_pods.wait_running(namespace, selector("forever", "all"))


def test_an_operator_killed_and_restarted_neither_double_counts_nor_forgets(
    operator: OperatorProcess,  # noqa: F811
    kube: Path,
    tmp_path: Path,
    make_pool: Callable[..., str],  # noqa: F811
    pools: Pools,
    evaluations: Evaluations,  # noqa: F811
    fake_pods: FakePods,
    namespace: str,
) -> None:
    pool = make_pool(pricing=PER_SECOND, budgets=[budget(spendLimit="1000", warnAt=[1])])  # 1 % = 10 s
    evaluations.create("done", pool, autoReleaseSeconds=60)
    (pod,) = fake_pods.wait_running(namespace, selector("done", "all"))
    fake_pods.succeed(namespace, pod.metadata.name, message=result_message({"accuracy": 0.5}))
    finished = evaluations.wait_phase("done", "Succeeded")
    evaluations.create("steady", pool, autoReleaseSeconds=60)
    fake_pods.wait_running(namespace, selector("steady", "all"))
    steady = wait_until(
        lambda: (s := evaluations.status("steady")).get("tasks", [{}])[0].get("startTime") and s,
        timeout=TIMEOUT,
        what="steady's task start",
    )
    done_seconds = sum(
        seconds_between(t["startTime"], t["completionTime"]) for t in finished["tasks"] if t.get("startTime")
    )
    started = steady["tasks"][0]["startTime"]

    # Status times are whole seconds (lastUpdated is truncated): 1 s at 1 USD a second is the tolerance;
    # counting twice would be 10 USD off and more.
    tolerance = Decimal("1.00")

    def expected(as_of: str) -> Decimal:
        """Independently of the operator: the finished task's time plus steady's up to ``as_of``."""
        return done_seconds + seconds_between(started, as_of)

    before = wait_until(
        lambda: (b := pools.budget(pool)).get("warnedAt") == 1 and b, timeout=TIMEOUT, what="1 % spent"
    )
    updated = pools.get(pool)["status"]["lastUpdated"]
    assert abs(Decimal(before["spent"]) - expected(updated)) <= tolerance

    operator.kill()  # SIGKILL: nothing is written on the way out
    restarted = OperatorProcess.start("restarted", kubeconfig=kube, namespaces=[namespace], log_dir=tmp_path)
    try:
        wait_until(lambda: "Assay controller started" in restarted.log(), timeout=TIMEOUT, what="the restart")
        # Raising the limit makes the restarted operator count again and write what it counted.
        pools.set_budgets(pool, budget(spendLimit="2000", warnAt=[1]))
        after = wait_until(
            lambda: (b := pools.budget(pool)).get("spendLimit") == "2000.00" and b,
            timeout=TIMEOUT,
            what="the restarted operator's count",
        )
        updated = pools.get(pool)["status"]["lastUpdated"]
        assert abs(Decimal(after["spent"]) - expected(updated)) <= tolerance
        assert after["since"] == before["since"]  # the same window: nothing before it is forgotten or added
        metric = wait_until(
            lambda: restarted.total("assay_budget_spent", pool=pool, budget="team"),
            timeout=TIMEOUT,
            what="the spent gauge",
        )
        assert abs(Decimal(str(metric)) - Decimal(after["spent"])) <= Decimal("0.01")
    finally:
        restarted.stop()
        print(restarted.log()[-4000:])


@pytest.mark.usefixtures("operator")
def test_a_window_rolling_over_releases_the_waiting_at_its_boundary(
    make_pool: Callable[..., str],  # noqa: F811
    pools: Pools,
    evaluations: Evaluations,  # noqa: F811
    fake_pods: FakePods,
    namespace: str,
) -> None:
    weekly = budget(interval="Weekly", spendLimit="3")  # Hold: no new starts once 3 USD are spent
    pool = make_pool(pricing=PER_SECOND, budgets=[weekly])
    evaluations.create("spender", pool, autoReleaseSeconds=0)  # charged as it runs
    (pod,) = fake_pods.wait_running(namespace, selector("spender", "all"))
    wait_until(lambda: pools.budget(pool).get("state") == "Exhausted", timeout=TIMEOUT, what="3 USD spent")
    fake_pods.succeed(namespace, pod.metadata.name, message=result_message({"accuracy": 0.5}))
    evaluations.wait_phase("spender", "Succeeded")
    evaluations.create("waiting", pool, autoReleaseSeconds=0)
    queued = evaluations.wait_phase("waiting", "Queued")
    assert condition(queued, "Queued")["reason"] == "BudgetExhausted"

    # The window now ends in a few seconds; the spending lies in it, so nothing is released yet.
    boundary = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=12)
    pools.set_budgets(pool, {**weekly, "start": shown(boundary - timedelta(days=7))})
    running = evaluations.wait_phase("waiting", "Running", timeout=TIMEOUT + 12)
    released = condition(running, "Queued")
    assert released["status"] == "False"
    assert released["lastTransitionTime"] >= shown(boundary), "released before its window ended"
    rolled = pools.budget(pool)
    assert (rolled["windowStart"], rolled["windowEnd"]) == (
        shown(boundary),
        shown(boundary + timedelta(days=7)),
    )
    assert Decimal(rolled["spent"]) < Decimal(3)  # the old window's spending is not carried over


@pytest.mark.usefixtures("operator")
def test_a_namespace_selector_scope_follows_the_namespace_labels(
    make_pool: Callable[..., str],  # noqa: F811
    pools: Pools,
    evaluations: Evaluations,  # noqa: F811
    fake_pods: FakePods,
    core_v1: client.CoreV1Api,
    namespace: str,
) -> None:
    label = "assay-test/budget"
    capped = budget(spendLimit="3", scope={"namespaceSelector": {"matchLabels": {label: "capped"}}})
    pool = make_pool(pricing=PER_SECOND, budgets=[capped])
    evaluations.create("first", pool, autoReleaseSeconds=0)
    fake_pods.wait_running(namespace, selector("first", "all"))
    started = wait_until(
        lambda: evaluations.status("first").get("tasks", [{}])[0].get("startTime"),
        timeout=TIMEOUT,
        what="first's task start",
    )
    # A quiet pool: its last status write 4 s old, first running. Nothing of the pool changes now (its
    # status is written once per change, not as money accrues), so only the namespace watch under test
    # can make it count again.
    wait_until(
        lambda: (
            datetime.now(UTC)
            >= max(moment(pools.get(pool)["status"]["lastUpdated"]), moment(started)) + timedelta(seconds=4)
        ),
        timeout=TIMEOUT,
        what="a quiet pool",
    )
    assert pools.budget(pool)["spent"] == "0.00"  # the namespace is not labelled: not in team's scope

    def relabel(value: str | None) -> None:
        core_v1.patch_namespace(namespace, {"metadata": {"labels": {label: value}}})

    relabel("capped")  # its spending moves into the budget's scope with it
    exhausted = wait_until(
        lambda: (b := pools.budget(pool)).get("state") == "Exhausted" and b, timeout=TIMEOUT, what="Exhausted"
    )
    assert Decimal(exhausted["spent"]) >= Decimal(4)  # first's task time from before the relabel too
    evaluations.create("second", pool, autoReleaseSeconds=0)
    queued = evaluations.wait_phase("second", "Queued")
    assert condition(queued, "Queued")["reason"] == "BudgetExhausted"
    assert "budget team has 0.00 USD of 3.00 USD remaining" in queued["message"]

    relabel(None)  # and out again: nothing holds the second one back any more
    evaluations.wait_phase("second", "Running")
    wait_until(
        lambda: pools.budget(pool).get("spent") == "0.00", timeout=TIMEOUT, what="team's spending gone"
    )


@pytest.mark.usefixtures("operator")
def test_spending_that_runs_does_not_rewrite_the_pool_status_until_something_changes(
    make_pool: Callable[..., str],  # noqa: F811
    pools: Pools,
    evaluations: Evaluations,  # noqa: F811
    fake_pods: FakePods,
    custom_objects: client.CustomObjectsApi,
    namespace: str,
) -> None:
    """Status once per change: ``spent`` grows every second while a task runs, but the pool's status is
    written when something happens (an Evaluation changes, a warnAt mark or the limit is reached, a window
    ends), not each time the operator sees its own write come back."""
    pool = make_pool(pricing=PER_SECOND, budgets=[budget(spendLimit="100000", warnAt=[99])])
    evaluations.create("steady", pool, autoReleaseSeconds=0)
    fake_pods.wait_running(namespace, selector("steady", "all"))
    wait_until(
        lambda: Decimal(pools.budget(pool).get("spent") or "0") > 0,
        timeout=TIMEOUT,
        what="steady counted by the budget",
    )
    # The absence of writes can only be seen over a span: watch the pool for 8 s, the task running all along.
    # Once a second rewritten before, it may be written once here (the last of steady's own changes).
    version = pools.get(pool)["metadata"]["resourceVersion"]
    stream = watch.Watch().stream(
        custom_objects.list_cluster_custom_object,
        GROUP,
        VERSION,
        POOL_PLURAL,
        field_selector=f"metadata.name={pool}",
        resource_version=version,
        timeout_seconds=8,
    )
    writes = [event["object"]["status"].get("lastUpdated") for event in stream if event["type"] == "MODIFIED"]
    assert len(writes) <= 1, f"the pool's status was written {len(writes)} times in 8 s: {writes}"
    assert evaluations.status("steady").get("phase") == "Running"

"""EvaluationCache: parsed once per version, our own writes win until the index shows them, pool lookups."""

from __future__ import annotations

from controller_fakes import evaluation_index, raw_evaluation

from assay.api import Phase
from assay.controller.evaluation_cache import EvaluationCache


def test_an_evaluation_is_parsed_once_per_resource_version() -> None:
    raw = raw_evaluation(version="1")
    cache = EvaluationCache(evaluation_index(raw))
    first = cache.get(("ns", "ev"))
    again = cache.get(("ns", "ev"))
    assert first is not None and again is not None
    assert first[1].spec == again[1].spec
    assert cache.parsed["ev-uid"][1] is cache.parsed["ev-uid"][1]
    parsed_at_1 = cache.parsed["ev-uid"][1]
    cache.index = evaluation_index(raw_evaluation(version="2", tasks=3))
    found = cache.get(("ns", "ev"))
    assert found is not None and found[1].spec.tasks == 3
    assert cache.parsed["ev-uid"][1] is not parsed_at_1


def test_an_unreadable_evaluation_is_ignored_not_raised() -> None:
    cache = EvaluationCache(evaluation_index(raw_evaluation(tasks="many")))
    assert cache.get(("ns", "ev")) is None
    assert cache.get(("ns", "absent")) is None


def test_our_written_status_wins_until_the_index_shows_that_version() -> None:
    raw = raw_evaluation(version="1", status={"phase": "Pending"})
    cache = EvaluationCache(evaluation_index(raw))
    cache.wrote("ev-uid", {"metadata": {"resourceVersion": "2"}, "status": {"phase": "Running"}})
    found = cache.get(("ns", "ev"))
    assert found is not None and found[1].status.phase == Phase.RUNNING
    # The index catches up: its own copy is read, ours dropped.
    caught_up = raw_evaluation(version="2", status={"phase": "Running", "message": "from the index"})
    assert cache.stored_status(caught_up)["message"] == "from the index"
    assert "ev-uid" not in cache.written


def test_unfinished_in_a_pool_reads_our_writes_and_skips_held_ones() -> None:
    cache = EvaluationCache(
        evaluation_index(
            raw_evaluation("running", status={"phase": "Running"}),
            raw_evaluation("done", status={"phase": "Running"}),
            raw_evaluation("held", suspend=True),
            raw_evaluation("cancelled", cancel=True),
            raw_evaluation("elsewhere", pool="t4"),
        )
    )
    cache.wrote("done-uid", {"metadata": {"resourceVersion": "9"}, "status": {"phase": "Succeeded"}})
    assert set(cache.unfinished_in("a100")) == {("ns", "running"), ("ns", "held"), ("ns", "cancelled")}
    assert [key for key, _ in cache.may_run_in("a100")] == [("ns", "running")]


def test_the_echo_of_our_own_write_drops_the_copy_kept_since_the_write() -> None:
    cache = EvaluationCache(evaluation_index(raw_evaluation(version="1", status={"phase": "Pending"})))
    cache.wrote("ev-uid", {"metadata": {"resourceVersion": "2"}, "status": {"phase": "Suspended"}})
    assert not cache.is_echo({"uid": "ev-uid", "resourceVersion": "1"})  # an older event: keep the copy
    assert "ev-uid" in cache.written
    assert cache.is_echo({"uid": "ev-uid", "resourceVersion": "2"})
    assert "ev-uid" not in cache.written  # an idle Evaluation keeps one status (the index's), not two
    assert not cache.is_echo({"uid": "ev-uid", "resourceVersion": "2"})


def test_a_changed_status_is_parsed_again_an_unchanged_one_is_not() -> None:
    cache = EvaluationCache(evaluation_index(raw_evaluation(version="1", status={"phase": "Pending"})))
    cache.get(("ns", "ev"))
    parsed = cache.statuses["ev-uid"][1]
    cache.get(("ns", "ev"))
    assert cache.statuses["ev-uid"][1] is parsed
    cache.wrote("ev-uid", {"metadata": {"resourceVersion": "2"}, "status": {"phase": "Running"}})
    found = cache.get(("ns", "ev"))
    assert found is not None and found[1].status.phase == Phase.RUNNING
    assert cache.statuses["ev-uid"][1] is not parsed


def test_forgetting_drops_every_copy() -> None:
    cache = EvaluationCache(evaluation_index(raw_evaluation()))
    cache.get(("ns", "ev"))
    cache.wrote("ev-uid", {"metadata": {"resourceVersion": "5"}, "status": {"phase": "Running"}})
    cache.forget("ev-uid")
    assert not cache.parsed and not cache.statuses and not cache.written

"""Every name and label the operator renders for an Evaluation is one Kubernetes accepts, for any valid
Evaluation name (a DNS subdomain: 1..253 characters, dots, a leading digit).

The rules are written here from the Kubernetes documentation ("Object Names and IDs", "Labels and
Selectors") and the Job validation (an Indexed Job's pod hostname ``<job>-<index>`` must be a DNS label),
not taken from the module under test.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from assay.api import Evaluation
from assay.contract import Step
from assay.controller.indexes import evaluation_key
from assay.render import RenderOptions, debug_secret_for, debug_service_for, job_for
from assay.render.names import evaluation_selector

DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")  # RFC 1123
DNS_1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")  # Service names
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
EVALUATION_LABEL = "assay.dev/evaluation"


def is_subdomain(name: str) -> bool:
    return len(name) <= 253 and DNS_SUBDOMAIN.fullmatch(name) is not None


def is_dns_label(name: str) -> bool:
    return len(name) <= 63 and DNS_LABEL.fullmatch(name) is not None


def is_service_name(name: str) -> bool:
    return len(name) <= 63 and DNS_1035_LABEL.fullmatch(name) is not None


def is_label_value(value: str) -> bool:
    return len(value) <= 63 and LABEL_VALUE.fullmatch(value) is not None


def shaped(length: int) -> list[str]:
    """Valid Evaluation names of ``length`` characters: plain, digit-leading, dotted, dashed."""
    names = ["a" * length, "7" + "b" * (length - 1)]
    if length >= 3:
        dotted = ".".join(["c" * 5] * (length // 6 + 1))[:length]
        names.append(dotted.rstrip(".") + "c" * (length - len(dotted.rstrip("."))))
        dashed = ("d-" * length)[: length - 1] + "d"
        names.append(dashed)
        names.append("0." + "e" * (length - 2))
    return [n for n in names if is_subdomain(n) and len(n) == length]


NAMES = [name for length in range(1, 254) for name in shaped(length)]


def evaluation(name: str, tasks: int = 1, debug: bool = True) -> Evaluation:
    return Evaluation.model_validate(
        {
            "apiVersion": "assay.dev/v1alpha1",
            "kind": "Evaluation",
            "metadata": {"name": name, "namespace": "team-a", "uid": "uid-1", "generation": 1},
            "spec": {
                "pool": "p",
                "model": {"name": "m", "uri": "file:///models/m"},
                "handler": "m_eval:Evaluator",
                "dataset": {"name": "d", "uri": "file:///data/d"},
                "tasks": tasks,
                **({"debug": {"enabled": True}} if debug else {}),
            },
        }
    )


def rendered(name: str, tasks: int) -> list[dict[str, Any]]:
    ev = evaluation(name, tasks)
    steps = (Step.PREDICT, Step.EVALUATE) if tasks > 1 else (Step.ALL,)
    jobs = [job_for(ev, None, step, RenderOptions()) for step in steps]
    return [*jobs, debug_service_for(ev, RenderOptions()), debug_secret_for(ev, "pw")]


def test_the_corpus_covers_every_length_and_shape() -> None:
    assert {len(n) for n in NAMES} == set(range(1, 254))
    assert any("." in n and len(n) > 63 for n in NAMES)
    assert any(n[0].isdigit() and len(n) == 253 for n in NAMES)


@pytest.mark.parametrize("tasks", [1, 2, 10, 1000])
def test_every_rendered_name_and_label_is_valid(tasks: int) -> None:
    wrong = []
    for name in NAMES:
        for obj in rendered(name, tasks):
            meta, kind = obj["metadata"], obj["kind"]
            labels = dict(meta["labels"])
            if kind == "Job":
                spec = obj["spec"]
                largest = spec["completions"] - 1
                labels.update(spec["template"]["metadata"]["labels"])
                if not is_dns_label(f"{meta['name']}-{largest}"):
                    wrong.append(f"{name}: Job {meta['name']} (pod hostname with index {largest})")
            if kind == "Service":
                labels.update(obj["spec"]["selector"])
                if not is_service_name(meta["name"]):
                    wrong.append(f"{name}: Service {meta['name']}")
            if not is_subdomain(meta["name"]):
                wrong.append(f"{name}: {kind} {meta['name']}")
            wrong += [f"{name}: {kind} label {k}={v}" for k, v in labels.items() if not is_label_value(v)]
    assert not wrong, "\n".join(wrong[:20])


@pytest.mark.parametrize("tasks", [1, 3])
def test_the_full_name_comes_back_from_every_job_and_pod(tasks: int) -> None:
    for name in NAMES:
        for job in rendered(name, tasks)[:-2]:
            for meta in (job["metadata"], job["spec"]["template"]["metadata"]):
                key = evaluation_key("team-a", meta["labels"], meta.get("annotations") or {})
                assert key == ("team-a", name)
                assert evaluation_selector(name) == f"{EVALUATION_LABEL}={meta['labels'][EVALUATION_LABEL]}"


def test_an_annotation_from_the_pool_cannot_redirect_a_pod() -> None:
    labels = {EVALUATION_LABEL: "mine"}
    assert evaluation_key("ns", labels, {"assay.dev/evaluation-name": "theirs"}) == ("ns", "mine")


def test_names_that_worked_before_keep_their_names() -> None:
    """Upgrade: an Evaluation running before must find the same Jobs, Service and Secret."""
    for name, tasks in itertools.product(["mnist", "a" * 52, "llama-3-8b-instruct-on-mmlu-5shot"], [1, 2]):
        objects = {(o["kind"], o["metadata"]["name"]) for o in rendered(name, tasks)}
        jobs = {f"{name}-predict", f"{name}-evaluate"} if tasks > 1 else {f"{name}-evaluate"}
        assert objects == {("Job", j) for j in jobs} | {
            ("Service", f"{name}-debug"),
            ("Secret", f"{name}-debug"),
        }
        for obj in rendered(name, tasks):
            assert obj["metadata"]["labels"][EVALUATION_LABEL] == name
            assert "annotations" not in obj["metadata"]


def test_long_and_unusual_names_keep_a_readable_prefix() -> None:
    name = "llama-3-8b-instruct-on-mmlu-5shot-2026-12-02-run-3-with-a-much-longer-tail.v2"
    job, service = rendered(name, 2)[0], rendered(name, 2)[2]
    assert job["metadata"]["name"].startswith("llama-3-8b-instruct-on-mmlu")
    assert job["metadata"]["name"].endswith("-predict")
    assert service["metadata"]["name"].endswith("-debug")
    assert rendered("1st.run", 1)[1]["metadata"]["name"][0].isalpha()


def test_names_are_the_same_on_every_render() -> None:
    name = "x" * 200
    assert rendered(name, 4) == rendered(name, 4)


def test_different_long_names_get_different_names() -> None:
    """Names that differ only past the readable prefix (or only in dots) still differ everywhere."""
    stem = "f" * 120
    names = [f"{stem}{i}" for i in range(3000)] + ["g" * 70, "g" * 71, "a.b" + "h" * 61, "a-b" + "h" * 61]
    objects = [rendered(n, 2) for n in names]
    for index in range(4):  # every rendered object: the Jobs, the Service, the Secret
        assert len({o[index]["metadata"]["name"] for o in objects}) == len(names)
    assert len({o[0]["metadata"]["labels"][EVALUATION_LABEL] for o in objects}) == len(names)

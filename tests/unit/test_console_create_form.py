"""Creating from the console: the quote (the operator's own cost arithmetic), the form's manifest and its
errors, and the create page over HTTP."""

from __future__ import annotations

from decimal import Decimal

import pytest
from cli_samples import pool
from console_fakes import FakeClient, console

from assay.console.create_form import CreateForm
from assay.errors import Invalid
from assay.quote import quote

COMPLETE = {
    "namespace": "team-a",
    "name": "cnn-v5",
    "pool": "a100",
    "model": "mnist-cnn",
    "model_version": "v5",
    "model_uri": "pvc://models/mnist-cnn",
    "handler": "mnist_eval:MNISTEvaluator",
    "dataset": "mnist-test",
    "dataset_uri": "pvc://datasets/mnist",
    "tasks": "3",
    "resources": "nvidia.com/gpu=2",
    "auto_release": "7200",
}


def test_the_quote_is_the_pools_price_for_every_task_until_auto_release():
    # 2 GPUs x 2.50 USD x 3 tasks = 15.00 an hour; released after two hours at the latest: 30.00.
    offer = quote(CreateForm.from_fields(COMPLETE, namespace="x").evaluation().spec, pool())
    assert offer is not None
    assert (offer.per_hour, offer.at_most, offer.currency) == (Decimal("15.00"), Decimal("30.00"), "USD")
    assert offer.per_task == {"nvidia.com/gpu": "2"}


def test_no_upper_bound_without_auto_release_and_no_quote_without_pricing():
    never = CreateForm.from_fields({**COMPLETE, "auto_release": "0"}, namespace="x").evaluation().spec
    offer = quote(never, pool())
    assert offer is not None and offer.at_most is None and offer.per_hour == Decimal("15.00")
    free = pool().model_copy(update={"spec": pool().spec.model_copy(update={"pricing": None})})
    assert quote(never, free) is None


def test_the_form_becomes_a_manifest():
    form = CreateForm.from_fields({**COMPLETE, "debug": "on", "runtime_image": "runner:1"}, namespace="x")
    manifest = form.manifest()
    assert manifest["metadata"] == {"name": "cnn-v5", "namespace": "team-a"}
    spec = manifest["spec"]
    assert spec["model"] == {"name": "mnist-cnn", "version": "v5", "uri": "pvc://models/mnist-cnn"}
    assert "version" not in spec["dataset"]
    assert spec["tasks"] == 3 and spec["autoReleaseSeconds"] == 7200
    assert spec["resources"] == {"nvidia.com/gpu": "2"}
    assert spec["debug"] == {"enabled": True} and spec["runtime"] == {"image": "runner:1"}
    assert CreateForm.from_fields({}, namespace="team-b").values["namespace"] == "team-b"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tasks": "many"}, "tasks: 'many' is not a whole number"),
        ({"tasks": "0"}, "tasks: Input should be greater than or equal to 1"),
        ({"resources": "gpu"}, "resources: 'gpu' is not NAME=AMOUNT"),
        ({"name": ""}, "name: give the evaluation a name"),
        ({"handler": "no-colon"}, "handler: "),
    ],
)
def test_form_errors_name_the_field(change: dict[str, str], message: str):
    with pytest.raises(Invalid, match=message.replace("(", r"\(")):
        CreateForm.from_fields({**COMPLETE, **change}, namespace="x").evaluation()


def test_the_create_page_offers_the_pools():
    page = console(FakeClient()).get("/create").text
    assert '<option value="a100">a100 — A100 nodes</option>' in page
    assert 'hx-post="http://testserver/create/quote"' in page


def test_the_price_is_shown_before_submit():
    fake = FakeClient()
    fragment = console(fake).post("/create/quote", data=COMPLETE).text
    assert "<strong>15.00 USD/hour</strong> for 3 tasks (nvidia.com/gpu=2 each)" in fragment
    assert "at most <strong>30.00 USD</strong> (auto-released after 2h)" in fragment
    assert ("create", "cnn-v5") not in fake.calls
    incomplete = console(fake).post("/create/quote", data={**COMPLETE, "pool": "h100"}).text
    assert "Price shown once the form is complete: resource pool &#39;h100&#39; not found" in incomplete


def test_submit_creates_and_opens_the_details():
    fake = FakeClient()
    answer = console(fake).post("/create", data=COMPLETE)
    assert answer.status_code == 303 and answer.headers["location"] == "/e/team-a/cnn-v5"
    assert fake.evaluations[0].spec.tasks == 3


def test_a_rejection_keeps_the_form_and_says_why():
    fake = FakeClient(
        reject="admission webhook denied the request: nvidia.com/gpu=2 exceeds the pool's max 1"
    )
    answer = console(fake).post("/create", data=COMPLETE)
    assert answer.status_code == 422
    assert "nvidia.com/gpu=2 exceeds the pool&#39;s max 1" in answer.text
    assert 'value="cnn-v5"' in answer.text and 'value="nvidia.com/gpu=2"' in answer.text


# --- debug mode with a password of one's own ---------------------------------------------------------------

PASSWORD = "correct horse battery staple"


def test_the_debug_password_goes_to_the_sdk_and_never_into_the_manifest():
    fake = FakeClient()
    answer = console(fake).post("/create", data={**COMPLETE, "debug": "on", "debug_password": PASSWORD})
    assert answer.status_code == 303
    assert fake.debug_passwords == {"cnn-v5": PASSWORD}
    assert PASSWORD not in repr(fake.evaluations[0].to_api())
    plain = FakeClient()
    console(plain).post("/create", data={**COMPLETE, "debug": "on"})  # the operator generates one
    assert plain.debug_passwords == {"cnn-v5": None}


def test_a_page_shown_again_never_holds_the_password():
    fake = FakeClient(reject="admission webhook denied the request: pool a100 is full")
    answer = console(fake).post("/create", data={**COMPLETE, "debug": "on", "debug_password": PASSWORD})
    assert answer.status_code == 422 and "pool a100 is full" in answer.text
    assert PASSWORD not in answer.text
    assert '<input type="password" name="debug_password" autocomplete="new-password" minlength="16"' in (
        answer.text
    )


def test_a_password_without_debug_mode_is_refused_before_anything_is_created():
    fake = FakeClient()
    answer = console(fake).post("/create", data={**COMPLETE, "debug_password": PASSWORD})
    assert answer.status_code == 422
    assert "debug password: tick Debug mode to use it, or leave it empty" in answer.text
    assert not [call for call in fake.calls if call[0] == "create"]


def test_the_quote_is_asked_for_without_the_password():
    page = console(FakeClient()).get("/create").text
    assert 'hx-params="not debug_password"' in page

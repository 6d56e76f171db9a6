"""The list's panes: one evaluation's details beside the list, the ticked ones compared below it, both kept
in the list's URL (assay.console.panes), and the list page that draws them (over HTTP, on a stand-in)."""

from __future__ import annotations

from console_fakes import FakeClient, console
from starlette.datastructures import QueryParams

from assay.console.panes import DetailsTarget, Panes, query_string


def parsed(query: str) -> Panes:
    params = QueryParams(query)
    return Panes.from_query(params.getlist("e"), params)


BOTH = "open=team-a/cnn-v3%3Ftab%3Dresults&e=team-a/cnn-v3&e=team-a/cnn-v4&base=team-a/cnn-v4&diff=1"


def test_the_panes_round_trip_through_the_url():
    panes = parsed(BOTH)
    assert panes.opened == "team-a/cnn-v3?tab=results"
    assert panes.compared is not None and panes.compared.refs == ("team-a/cnn-v3", "team-a/cnn-v4")
    assert panes.ticked == {"team-a/cnn-v3", "team-a/cnn-v4"}
    assert query_string(panes.to_params()) == BOTH
    assert parsed(query_string(panes.to_params())) == panes
    assert parsed("") == Panes()


def test_the_details_target_is_parsed_and_its_query_encoded_again():
    target = Panes(opened="team-a/cnn-v3?tab=results&label=1 2").details("default")
    assert target == DetailsTarget("team-a", "cnn-v3", "tab=results&label=1+2")
    assert Panes(opened="cnn-v3").details("team-b") == DetailsTarget("team-b", "cnn-v3", "")
    assert Panes(opened="team-a/").details("x") is None
    assert Panes().details("x") is None


def test_opening_and_closing_keep_the_other_pane():
    panes = parsed(BOTH)
    assert panes.opening("team-a/mlp-v1").compared == panes.compared
    assert panes.closed(details=True) == Panes(compared=panes.compared)
    assert panes.closed(compare=True) == Panes(opened=panes.opened)


def test_a_name_in_the_list_opens_its_details_beside_it():
    page = console(FakeClient()).get("/?cols=name,phase").text
    assert 'href="?cols=name,phase&amp;open=team-a/cnn-v3"' in page
    assert "<iframe" not in page and "workspace split" not in page


def test_the_details_pane_beside_the_list():
    fake = FakeClient()
    page = console(fake).get("/?cols=name,phase&open=team-a/cnn-v4%3Ftab%3Dtasks").text
    assert 'class="workspace split"' in page
    assert (
        '<iframe data-pane="details" name="details" src="http://testserver/e/team-a/cnn-v4?tab=tasks"' in page
    )
    assert 'class="full" target="_top" href="http://testserver/e/team-a/cnn-v4?tab=tasks"' in page
    assert 'class="close" href="?cols=name,phase"' in page  # closing keeps the list's view
    assert '<tr class="phase-succeeded open">' in page  # the row whose details are open
    # The list still works: its refresh keeps the pane, and one list request draws it (the frame asks
    # for the details itself).
    assert 'hx-get="http://testserver/rows?cols=name,phase&amp;open=team-a/cnn-v4%3Ftab%3Dtasks"' in page
    assert [call for call, _ in fake.calls if call in ("list", "get")] == ["list"]


def test_the_compare_pane_below_the_list_keeps_the_ticks_and_the_baseline():
    page = console(FakeClient()).get("/?e=team-a/cnn-v3&e=team-a/cnn-v4&base=team-a/cnn-v4&diff=1").text
    src = "http://testserver/compare?e=team-a/cnn-v3&amp;e=team-a/cnn-v4&amp;base=team-a/cnn-v4&amp;diff=1"
    assert f'<iframe data-pane="compare" name="compare" src="{src}"' in page
    assert 'class="pane below"' in page and "Compare 2" in page
    assert 'aria-label="tick team-a/cnn-v3" checked>' in page
    assert 'aria-label="tick team-a/mlp-v1">' in page  # not ticked
    # Comparing again (other ticks) keeps the baseline and "only differences"; the full-screen button
    # sends the same ticks to /compare.
    assert '<input type="hidden" name="base" value="team-a/cnn-v4">' in page
    assert '<input type="hidden" name="diff" value="1">' in page
    assert 'formaction="http://testserver/compare"' in page
    assert 'class="close" href="?"' in page


def test_a_page_in_a_pane_leaves_out_the_consoles_header():
    # The pages themselves decide, in the browser: the same URL works full screen and in a frame.
    page = console(FakeClient()).get("/e/team-a/cnn-v3").text
    assert 'if (window.self !== window.top) document.documentElement.classList.add("embedded")' in page
    compare = console(FakeClient()).get("/compare?e=team-a/cnn-v3&e=team-a/cnn-v4").text
    assert '<p class="back"><a href="http://testserver/?e=team-a/cnn-v3&amp;e=team-a/cnn-v4">' in compare
    assert '<a target="_top" href="http://testserver/e/team-a/cnn-v3">cnn-v3</a>' in compare

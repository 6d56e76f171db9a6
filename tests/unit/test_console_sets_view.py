"""EvaluationSets in the console: the sets page (``assay sets``), one set's table (``assay set``) with links
to its children in the list and to their comparison, and the list filtered to one set's children."""

from __future__ import annotations

from cli_samples import raw_evaluation
from console_fakes import FakeClient, console, sample_set

from assay.api import Evaluation
from assay.console.sets_view import children_compared, grid


def test_the_sets_page_lists_progress_best_and_cost():
    page = console(FakeClient()).get("/sets").text
    assert '<a href="http://testserver/s/team-a/digits-matrix">digits-matrix</a>' in page
    assert "<td>4/4</td>" in page and "accuracy=0.99 digits-svc@v2 / digits-test@v1" in page
    assert ">Sets</a>" in page


def test_the_sets_page_of_all_namespaces_names_each_sets_namespace():
    fake = FakeClient(namespace="team-b")  # the set lives in team-a
    assert "No evaluation sets in namespace team-b." in console(fake).get("/sets").text
    page = console(fake, all_namespaces=True).get("/sets").text
    assert "<th>NAMESPACE</th>" in page and "<td>team-a</td>" in page
    assert '<a href="http://testserver/s/team-a/digits-matrix">digits-matrix</a>' in page


def test_the_set_table_marks_the_baseline_and_the_deltas():
    rows = dict(grid(sample_set()))
    assert list(rows) == ["digits-test@v1", "digits-noisy@noisy-v1"]
    cells = [cell for row in rows.values() for cell in row if cell is not None]
    assert [(c.text, c.mark, c.trend) for c in cells] == [
        ("0.98", "", "baseline"),
        ("0.99", "▲+0.01", "up"),
        ("0.97", "", "baseline"),
        ("0.9", "▼-0.07", "down"),
    ]


def test_the_set_page_links_its_children_and_their_comparison():
    page = console(FakeClient()).get("/s/team-a/digits-matrix").text
    assert '<span class="badge">baseline</span>' in page and '<span class="mark">▲+0.01</span>' in page
    assert 'href="http://testserver/?set=digits-matrix">Its evaluations in the list</a>' in page
    compared = children_compared(sample_set())
    assert compared.compared is not None and len(compared.compared.refs) == 4
    assert compared.compared.baseline in compared.compared.refs
    assert "Compare them</a>" in page and f"base={compared.compared.baseline}" in page


def test_the_list_shows_only_one_sets_children():
    fake = FakeClient()
    child = raw_evaluation("digits-matrix-abc12")
    child["metadata"]["labels"] = {"assay.dev/evaluation-set": "digits-matrix"}
    fake.evaluations.insert(0, Evaluation.model_validate(child))
    page = console(fake).get("/?set=digits-matrix").text
    assert ">digits-matrix-abc12<" in page and ">cnn-v3<" not in page
    assert "1 of 4 evaluations" in page
    assert '<input type="hidden" name="set" value="digits-matrix">' in page


def test_a_missing_set_is_a_not_found_page():
    answer = console(FakeClient()).get("/s/team-a/ghost")
    assert answer.status_code == 404 and "evaluation set &#39;ghost&#39;" in answer.text

"""The model results as people read them: the check run's section, its title, the terminal table, Slack lines.

The comparisons come from core.metrics.compare over a real checked
pipeline, so the wording is tested on what the program would say.
"""

from __future__ import annotations

import textwrap

from fasttrack_gitops.core.metrics import BaseRef, compare
from fasttrack_gitops.core.pipeline import check_pipeline
from fasttrack_gitops.core.reports.markdown import byte_size
from fasttrack_gitops.core.reports.results import gate_title, results_markdown, results_text, slack_lines

BASE = BaseRef("20261201-101530-3fa9c1", commit="def5678", ref="main", age_s=3 * 86400 + 60)
RULES = """\
accuracy: {direction: higher, noise: 0.002, gate: {min: 0.90, max_regression: "1%"}}
loss: {direction: lower}
f1: {direction: higher, noise: "1%"}
"""


def pipeline(rules: str = RULES, *, more: str = ""):
    text = "version: '1'\nname: d\ntasks:\n  - name: evaluate\n    command: x\n"
    text += "    metrics:\n      files: [metrics.json]\n      rules:\n" + textwrap.indent(rules, "        ") + more
    result = check_pipeline(text.encode(), "p.yaml")
    assert result.ok, result.diagnostics
    return result.pipeline


def story():
    """accuracy fails its gate, loss improves, f1 moves within noise, epochs stays, one metric is new, one gone."""
    head = {"evaluate": {"accuracy": 0.88, "loss": 0.2, "f1": 0.501, "epochs": 3, "new_one": 7}}
    base = {"evaluate": {"accuracy": 0.93, "loss": 0.25, "f1": 0.5, "epochs": 3, "gone": 1}}
    return compare(pipeline(), head, base, base_ref=BASE, problems=["evaluate: scores.json was not written"])


def test_the_section_leads_with_the_baseline_then_the_failed_gates():
    text = results_markdown(story(), base_label="main@def5678")
    lines = text.splitlines()
    assert lines[0] == "### Model results"
    assert lines[2] == "Compared with `main@def5678` · job `20261201-101530-3fa9c1` · 3 days old"
    assert lines[4:6] == ["**❌ 1 gate failed**", "- accuracy 0.93 → 0.88 (gate ≥ 0.9)"]


def test_a_stale_baseline_is_said():
    from dataclasses import replace

    found = story()
    old = replace(found, base=replace(BASE, age_s=40 * 86400))
    assert "40 days old (stale: more than 14 days older than this job)" in results_markdown(old, base_label="main@d")
    assert "stale" not in results_markdown(found, base_label="main@d")


def test_changed_metrics_have_arrows_for_the_sign_and_marks_for_the_direction():
    text = results_markdown(story(), base_label="main@def5678")
    table = text[text.index("| metric") : text.index("<details>")]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert rows[0] == "| `accuracy` | 0.93 | 0.88 | ▼ -0.05 | -5.4% | ❌ gate ≥ 0.9 |"
    assert rows[1] == "| `loss` | 0.25 | 0.2 | ▼ -0.05 | -20.0% | ✅ |"  # down, and good news
    assert "| `new_one` |  | 7 |  |  | new |" in rows
    assert "| `gone` | 1 |  |  |  | missing |" in rows


def test_unchanged_metrics_and_those_within_noise_are_folded():
    text = results_markdown(story(), base_label="main@def5678")
    folded = text[text.index("<details>") : text.index("</details>")]
    assert "<summary>2 unchanged metrics</summary>" in folded
    assert "| `f1` | 0.5 | 0.501 | ▲ +0.001 | +0.2% | ≈ within noise |" in folded
    assert "| `epochs` | 3 | 3 |  |  |  |" in folded


def test_problems_are_listed():
    text = results_markdown(story(), base_label="main@def5678")
    assert text.endswith("**Problems**\n\n- evaluate: scores.json was not written\n")


def test_without_a_baseline_it_says_so_plainly_and_nothing_is_new():
    c = compare(pipeline(), {"evaluate": {"accuracy": 0.95}}, None)
    text = results_markdown(c, base_label="no earlier successful job on main")
    assert "No baseline: no earlier successful job on main. The values are this job's alone." in text
    assert "| `accuracy` |  | 0.95 |  |  | gate ≥ 0.9 holds |" in text
    assert "new" not in text


def test_plots_are_shown_as_images():
    text = results_markdown(story(), base_label="main", images=[("ROC curve", "https://example.com/roc.png")])
    assert "**ROC curve**\n\n![ROC curve](https://example.com/roc.png)" in text


def test_a_thousand_metrics_fit_the_budget_and_keep_their_gate_rows():
    rules = "".join(f"m{i}: {{direction: higher, gate: {{min: 0.5}}}}\n" for i in range(0, 1000, 100))
    head = {"evaluate": {f"m{i}": 0.4 if i % 200 == 0 else 0.6 + i / 10_000 for i in range(1000)}}
    base = {"evaluate": {f"m{i}": 0.6 if i < 500 else 0.6 + i / 10_000 for i in range(1000)}}
    c = compare(pipeline(rules), head, base, base_ref=BASE)
    text = results_markdown(c, base_label="main@def5678", max_bytes=20_000)
    assert byte_size(text) <= 20_000
    for i in range(0, 1000, 100):
        assert f"| `m{i}` |" in text  # every gated row, failed or not
    assert "**❌ 5 gates failed**" in text
    assert "more_" in text  # rows were cut, and it says how many
    assert "unchanged metrics" in text


def test_gate_rows_are_never_cut_even_past_the_budget():
    rules = "".join(f"m{i}: {{gate: {{min: 1}}}}\n" for i in range(50))
    c = compare(pipeline(rules), {"evaluate": {f"m{i}": 0 for i in range(50)}}, None)
    text = results_markdown(c, base_label="", max_bytes=500)
    assert all(f"| `m{i}` |" in text for i in range(50))


def test_the_gate_title_names_the_first_failed_gate():
    assert gate_title(story()) == "accuracy 0.93 → 0.88 (gate ≥ 0.9)"
    regression = compare(pipeline(), {"evaluate": {"accuracy": 0.91}}, {"evaluate": {"accuracy": 0.93}})
    assert gate_title(regression) == "accuracy 0.93 → 0.91 (gate: at most 1% worse)"
    required = compare(pipeline("auc: {gate: {required: true}}\n"), {"evaluate": {}}, None)
    assert gate_title(required) == "auc missing (gate: required)"
    assert gate_title(compare(pipeline(), {"evaluate": {"accuracy": 0.95}}, None)) is None


def test_two_tasks_with_the_same_metric_are_qualified_by_task():
    p = pipeline(RULES, more="  - name: train\n    command: x\n")
    c = compare(p, {"evaluate": {"accuracy": 0.95}, "train": {"accuracy": 0.99}}, None)
    assert "| `evaluate/accuracy` |" in results_markdown(c, base_label="")
    assert "train/accuracy" in results_text(c)


def test_the_terminal_table_lists_gates_first_and_the_problems():
    text = results_text(story())
    lines = text.splitlines()
    assert lines[0].split() == ["metric", "base", "head", "Δ", "Δ%", "result"]
    assert lines[1].split()[:5] == ["accuracy", "0.93", "0.88", "▼", "-0.05"]
    assert lines[-2:] == ["1 gate failed", "problem: evaluate: scores.json was not written"]


def test_slack_lines_put_failed_gates_first_then_the_biggest_changes():
    lines = slack_lines(story())
    assert lines[0] == "accuracy 0.93 → 0.88 ▼ -5.4% ❌ gate ≥ 0.9"
    assert lines[1] == "loss 0.25 → 0.2 ▼ -20.0% ✅"
    assert "gone 1 → missing" in lines and "new_one 7 new" in lines
    assert not any(line.startswith(("f1", "epochs")) for line in lines)


def test_slack_lines_stop_at_the_limit_and_escape_mrkdwn():
    c = compare(pipeline("x: {}\n"), {"evaluate": {f"<m{i}>": i for i in range(20)}}, {"evaluate": {}})
    lines = slack_lines(c, limit=5)
    assert len(lines) == 5 and lines[-1] == "… and 16 more"
    assert lines[0].startswith("&lt;m0&gt; ")

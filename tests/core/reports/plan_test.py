"""A forecast in words: the headline, one row per task in a terminal table and in Markdown."""

from __future__ import annotations

from core.forecast_test import DURATIONS, HIT, ML

from fasttrack_gitops.core.forecast import Cached, forecast, with_base
from fasttrack_gitops.core.reports.plan import headline, plan_markdown, plan_text

CHANGED = Cached(None, "code of tasks/train changed (3f2a1c0 → 9b0e44d)")


def found():
    return forecast(ML, {"prepare": HIT, "train": CHANGED, "report": HIT}, DURATIONS, commit="0123456789abcdef" * 2)


def test_the_headline_counts_estimates_and_saves():
    assert headline(found()) == "will run 2 · reuse 2 of 4 tasks · ~1h15m · saves ~0.3 CPU-h"
    everything = forecast(ML, dict.fromkeys(("prepare", "train", "evaluate", "report"), HIT), DURATIONS)
    assert headline(everything) == "will run 0 · reuse 4 of 4 tasks · nothing to wait for · saves ~2.2 GPU-h"
    cold = forecast(ML, {}, {}, no_cache=True)
    assert headline(cold) == "will run 4 · reuse 0 of 4 tasks · duration unknown (no earlier run to estimate from)"


def test_text_has_a_row_per_task_the_critical_path_marked():
    text = plan_text(found())
    lines = text.splitlines()
    assert lines[0] == f"plan ml at 0123456789ab: {headline(found())}"
    assert lines[2].split() == ["task", "action", "estimate", "why"]
    assert lines[3].split()[:3] == ["prepare", "reuse", "0"]
    assert lines[4].split()[:3] == ["*train", "run", "~1h"] and lines[4].endswith(CHANGED.reason)
    assert lines[5].split()[:3] == ["*evaluate", "run", "~15m"] and lines[5].endswith("input 'train' will run")
    assert "critical path: train → evaluate" in text


def test_markdown_has_a_table_and_escapes_cells():
    odd = forecast(ML, {"prepare": Cached(None, "env A|B <changed>")}, DURATIONS)
    md = plan_markdown(with_base(odd, "main", {"prepare": ("image changed",)}))
    assert md.startswith("### Plan for `ml`\n\n**will run 4 · reuse 0 of 4 tasks · ~1h25m**\n")
    assert "Critical path: `prepare` → `train` → `evaluate`" in md
    assert "| task | action | why | estimate | changed since main |\n| --- | --- | --- | --- | --- |\n" in md
    assert "| `prepare` **(critical)** | ▶️ run | env A\\|B &lt;changed&gt; | ~10m | image changed |" in md
    assert "| `report` | ▶️ run | input 'prepare' will run | ~1m | nothing |" in md
    reused = plan_markdown(found())
    assert "| `prepare` | ♻️ reuse | reused from job " in reused

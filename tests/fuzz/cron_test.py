"""Fuzz: cron expressions (core/pipeline/cron.py), as pipeline files write them in on.schedule.

Invariants: any text parses or raises ValueError (which the pipeline check reports as a diagnostic); a schedule
that parses gives its next and its latest tick quickly, or a ValueError when it never fires; ticks are on the
schedule and in order.
"""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from fasttrack_gitops.core.pipeline.cron import latest_tick, matches, next_tick, parse_cron

FIELD_PIECES = st.sampled_from(["*", "/", ",", "-", "0", "1", "5", "7", "12", "31", "59", "60", "feb", "SUN", "x"])
FIELD = st.one_of(
    st.lists(FIELD_PIECES, min_size=1, max_size=6).map("".join),
    st.integers(min_value=1, max_value=5000).map(lambda n: "*/" + "9" * n),
    st.text(min_size=1, max_size=8).filter(lambda s: not any(c.isspace() for c in s)),
)
EXPRESSIONS = st.one_of(st.lists(FIELD, min_size=5, max_size=5).map(" ".join), st.text(max_size=40))
EPOCHS = st.floats(min_value=0, max_value=4_000_000_000)  # 1970 to 2096


@given(expr=EXPRESSIONS, after=EPOCHS, span=st.floats(min_value=0, max_value=400 * 86400))
def test_any_expression_parses_or_says_why_and_its_ticks_come_quickly(expr, after, span):
    try:
        cron = parse_cron(expr)
    except ValueError as e:
        assert str(e)
        return
    try:
        tick = next_tick(cron, after)
    except ValueError as e:
        assert "does not fire" in str(e)
    else:
        assert tick > after and matches(cron, datetime.fromtimestamp(tick, timezone.utc))
    latest = latest_tick(cron, after, after + span)
    assert latest is None or (after < latest <= after + span)

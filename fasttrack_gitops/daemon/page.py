"""A job as one HTML page: what a check's "Details" link and a Slack button open on the daemon.

Self-contained but for Mermaid, which the browser loads to draw the DAG
(without it the diagram's source shows, still readable). Every value is
escaped; log tails are not shown here (they may be long and are in the
check run's text and `fasttrack-gitops jobs logs`).
"""

from __future__ import annotations

import html

from fasttrack_gitops.core.metrics import Comparison
from fasttrack_gitops.core.render.graph import mermaid
from fasttrack_gitops.core.render.jobs import elapsed
from fasttrack_gitops.core.reports.results import PLAIN_COLUMNS, plain_rows

MERMAID_JS = "https://cdn.jsdelivr.net/npm/mermaid@11/dist/mermaid.min.js"


def job_page(view, results: Comparison | None = None, base: str = "") -> str:
    """The page; `results`: the job's model results against `base` (engine/results.py), when it declares any."""
    job = view.job
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(i.name)}</td><td class='{e(str(i.state))}'>{e(str(i.state))}</td><td>{e(elapsed(i))}</td>"
        f"<td>{len(i.attempts) or '-'}</td><td>{e(i.reason)}</td></tr>"
        for i in view.tasks.values()
    )
    if job.invalid:
        body = (
            "<h2>Why it did not run</h2><ul>"
            + "".join(
                f"<li><code>{e(str(d.get('file')))}:{d.get('line')}:{d.get('column')}</code> {e(str(d.get('code')))}: "
                f"{e(str(d.get('message')))}</li>"
                for d in job.diagnostics
            )
            + "</ul>"
        )
    else:
        states = {name: str(i.state) for name, i in view.tasks.items()}
        body = (
            f"<table><tr><th>task</th><th>state</th><th>duration</th><th>attempts</th><th>note</th></tr>{rows}"
            f"</table><h2>DAG</h2><pre class='mermaid'>{e(mermaid(job.pipeline_model(), states))}</pre>"
        )
    if results is not None:
        body = _results_html(results, base) + body
    trigger = job.trigger
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(job.pipeline)} {e(str(view.status))} · fasttrack-gitops</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;color:#1f2328}}table{{border-collapse:collapse}}
td,th{{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left}}.succeeded{{color:#1a7f37}}
.failed,.gate{{color:#cf222e}}.running{{color:#9a6700}}code{{background:#f6f8fa}}</style></head>
<body><h1>{e(job.pipeline)} <small>{e(str(view.status))}</small></h1>
<p>Job <code>{e(job.id)}</code> · {e(job.repository)} · <code>{e((job.commit or "")[:12])}</code> {e(job.ref or "")}
· {e(str(trigger.get("event", "")))} {e(str(trigger.get("sender") or trigger.get("by") or ""))}
· spec <code>{e(job.spec_id)}</code></p>
{body}
<script src="{MERMAID_JS}"></script><script>window.mermaid && mermaid.initialize({{startOnLoad: true}})</script>
</body></html>
"""


def _results_html(found: Comparison, base: str) -> str:
    """The model results as a table: what GitLab's commit status links to, and the check's "Details"."""
    e = html.escape
    against = f"compared with {e(base)}" if found.base is not None else f"no baseline: {e(base)}"
    head = "".join(f"<th>{e(c)}</th>" for c in PLAIN_COLUMNS)
    rows = "".join(
        "<tr>" + "".join(f"<td{_gate(c)}>{e(c)}</td>" for c in cells) + "</tr>" for cells in plain_rows(found)
    )
    problems = "".join(f"<li>{e(p)}</li>" for p in found.problems)
    failed = f"<p class='gate'>{found.gates_failed} gate(s) failed</p>" if found.gates_failed else ""
    return (
        f"<h2>Model results</h2><p>{against}</p>{failed}<table><tr>{head}</tr>{rows}</table>"
        + (f"<ul>{problems}</ul>" if problems else "")
        + "<h2>Tasks</h2>"
    )


def _gate(cell: str) -> str:
    return " class='gate'" if "gate" in cell and "holds" not in cell else ""

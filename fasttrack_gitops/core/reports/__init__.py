"""What a check run, a commit status or a Slack message says about a job. Pure.

model.py: the `JobReport` a reporter sends and the reporter protocol;
build.py: a job's report from its stored view, put together from conclusion.py
(the conclusion and the title), summary.py (task table, graph, origin) and
failures.py (the failed tasks' log tails); markdown.py and slack_blocks.py:
text that stays well-formed within each service's limits.
The senders live in `engine/reporters/`.
"""

"""Status back to people: GitHub check runs (commit statuses as a fallback), GitLab commit statuses, Slack.

Every reporter turns one `JobReport` (what a person should see about a job
now; core/reports/, pure) into requests to its service, behind the small
`Reporter` protocol of core/reports/model.py, and is built from its own
config type (config.py). No shell calls a reporter directly: it marks the
job in an outbox (engine/state/outbox.py in the daemon's state database,
memory_outbox.py in the Action's step), and the deliverer
(engine/deliver.py) sends the latest report of each marked job, coalesced,
retried with backoff. A reporter that keeps failing never blocks or fails
a job.
"""

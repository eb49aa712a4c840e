"""Status back to people: GitHub check runs (commit statuses as a fallback), GitLab commit statuses, Slack.

Every reporter turns one `JobReport` (what a person should see about a job
now; report.py, pure) into requests to its service, behind the small
protocol in base.py. The daemon never calls a reporter directly: it marks
the job in the outbox (outbox.py, a table in the state database), and the
deliverer (deliver.py) sends the latest report of each marked job,
coalesced, retried with backoff, across restarts. A reporter that keeps
failing never blocks or fails a job.
"""

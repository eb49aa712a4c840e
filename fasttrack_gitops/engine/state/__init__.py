"""Persistence: the one SQLite state database and everything that writes SQL.

store.py (jobs, task instances, attempts, events: `Store`, what callers use)
with records.py (those rows as records), job_views.py (jobs read as views),
task_durations.py (past task durations), runner_lock.py (one runner per job)
and state_folder.py (the folder's layout); migrations.py (the schema and its
versions, opening and transactions), errors.py (what can go wrong, by who
must act), ledger.py (the daemon's keys, queue and gates), outbox.py (reports
waiting to be delivered; memory_outbox.py: the same rules kept in memory, for
the Action's step). Nothing outside this package writes SQL.
"""

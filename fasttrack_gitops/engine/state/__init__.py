"""Persistence: the one SQLite state database and everything that writes SQL.

store.py (jobs, task instances, attempts, events), migrations.py (the schema
and its versions), ledger.py (the daemon's keys, queue and gates), outbox.py
(reports waiting to be delivered). Nothing outside this package writes SQL.
"""

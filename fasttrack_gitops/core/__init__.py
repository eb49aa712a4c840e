"""The core: pure decisions over plain data, no I/O.

The pipeline model (load with positions, schema, semantics), the job model
(freeze, status), the scheduler (what may start now), triggers (what an event
selects), rendering (what a terminal, a check or a message shows), masking and
the error types. Nothing here imports an executor, the store, httpx, sqlite3,
subprocess or click: `import-linter` checks it (see `.importlinter`).
"""

"""The engine: what the three shells (`commands/`, `daemon/`, `ci/`) share, written once.

Plan a job (plan.py), launch it (launch.py, runner.py) with an executor
(executors/) in its pipeline data folder (datafolder.py), keep state
(state/), deliver reports (deliver.py) through reporters (reporters/), and
the edges they stand on: git (gitrepo/), the Backend.AI client
(backendai/), the repository on disk (workspace.py).
Imports point down only: the engine uses the core, never a shell.
"""

"""The `backendai` executor: each task attempt is one Backend.AI batch compute session.

The registry names `executor.BackendAIExecutor`; the rest of this package is its own:

- executor.py  one attempt from start to end, and a runner's attempt found again (reattach)
- layout.py    the session's startup script: FastTrack's /pipeline layout, then the command (pure)
"""

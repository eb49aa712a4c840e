"""The `backendai` executor: each task attempt is one Backend.AI batch compute session.

The registry names `executor.BackendAIExecutor`; the rest of this package is its own:

- executor.py      one attempt from start to end, and a runner's attempt found again (reattach)
- uploads.py       the pipeline data folder (a vfolder) and the task's code shipped to it, each once
- task_spec.py     a task attempt as the batch session it asks for (engine/backendai/session_spec.py; pure)
- layout.py        the session's startup script: FastTrack's /pipeline layout, then the command (pure)
- watch.py         following a session to its end: the event stream, GraphQL looks, polling, destroying it, its log
- verdict.py       how an ended session becomes the attempt's outcome (pure)
- cache.py         the task cache in the pipeline data folder (the executor's CacheIndex)
- outputs.py       the tasks' outputs read where the sessions wrote them (the executor's OutputsFolder)
"""

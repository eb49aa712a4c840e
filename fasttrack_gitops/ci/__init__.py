"""`fasttrack-gitops ci`: the engine of the GitHub Action.

A step in a GitHub Actions job validates every pipeline file of the checked
out repository, selects the pipelines the workflow's event selects (with the
daemon's trigger code), and in `run` mode runs them, reports check runs and
writes the step summary and outputs. The modules, each answering one
question:

- `runner_env`: the runner's environment and event payload, as a context.
- `workflow`: workflow commands (annotations, groups, masks), the outputs
  file and the step summary file; GitHub's escaping rules.
- `selection`: which pipelines the event selects, and why. Pure.
- `session`: the repository side: validation, the change set, the plan.
- `jobs`: running the selected jobs, streaming each task's log.
- `reporters`: check runs and Slack messages, never failing the step.
- `summary`: the step summary's Markdown. Pure.
- `submit`: `wait: false`, handing the jobs to a daemon.
- `main`: the flow, and its exit code.
"""

"""The GitOps daemon (`serve`): configuration, webhooks, git watchers, the job loop and its HTTP API."""

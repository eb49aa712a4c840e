"""GraphQL queries to the manager: `POST /admin/gql` (backendai-api.md §2.3).

The manager answers 200 with `{"data": ..., "errors": [...]}` (graphene's
formatted result; the legacy `/admin/graphql` returned `data` bare). A query
that reads only is safe to repeat, so it is sent as idempotent and retried
like a GET.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fasttrack_gitops.engine.backendai import errors


class GraphQLError(errors.BackendAIError):
    """The manager ran the query and reported errors (a field it does not know, a bad id, no permission)."""

    def __init__(self, message: str, *, messages: list[str], **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.messages = messages


async def gql(client, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The `data` of a read-only query; GraphQLError when the answer carries errors."""
    doc = await client.request(
        "POST", "/admin/gql", json={"query": query, "variables": dict(variables or {})}, idempotent=True
    )
    if not isinstance(doc, dict):
        raise errors.BackendAIError(
            f"Backend.AI POST /admin/gql: an answer that is not a JSON object ({doc!r:.80})",
            method="POST",
            path="/admin/gql",
        )
    problems = doc.get("errors")
    if problems:
        messages = [str(p.get("message", p)) if isinstance(p, dict) else str(p) for p in problems]
        raise GraphQLError(
            f"Backend.AI GraphQL query failed: {'; '.join(messages)}",
            messages=messages,
            method="POST",
            path="/admin/gql",
        )
    data = doc.get("data", doc)  # the legacy /admin/graphql answered the data bare
    return data if isinstance(data, dict) else {}

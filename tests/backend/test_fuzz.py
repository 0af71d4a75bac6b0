"""Schemathesis against the OpenAPI schema, as a coordinator and as a reader: no 5xx, and every
response conforms to the schema; and against the HTML pages, described by a schema of their
own, as every kind of visitor: no 5xx. Bounded: MAX_EXAMPLES cases per operation and identity
(counted)."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import RouteContext
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from backend.auth.models import Role
from backend.reading.deps import READER_COOKIE
from tests.backend.conftest import StudySetup
from tests.conftest import Users

SIGN_OUTS = {("POST", "/api/auth/logout"), ("DELETE", "/api/reader/session"), ("POST", "/logout")}
MAX_EXAMPLES = int(os.environ.get("PIESTUDY_FUZZ_EXAMPLES", "20"))
PAGES_SCHEMA = "/__pages-openapi.json"
# Operations that spend seconds of CPU on a valid request by design (the power planner simulates
# up to 50,000 answers, about a second): fewer examples, so the run stays bounded.
EXPENSIVE = {("POST", "/api/studies/power"): 5}


class Fuzzed:
    def __init__(self) -> None:
        self.cases = 0
        self.statuses: dict[int, int] = {}
        self.failures: list[str] = []


def fuzz_schema(
    schema: Any, identities: dict[str, dict[str, str]], real: dict[str, Any], checks: list[Any]
) -> Fuzzed:
    out = Fuzzed()

    def fuzz(operation: Any, headers: dict[str, str]) -> None:
        examples = EXPENSIVE.get((operation.method.upper(), operation.path), MAX_EXAMPLES)

        @given(case=operation.as_strategy())
        @settings(
            max_examples=min(examples, MAX_EXAMPLES), deadline=None, database=None, derandomize=True,
            suppress_health_check=list(HealthCheck),
        )  # fmt: skip
        def run(case: Any) -> None:
            out.cases += 1
            if out.cases % 2 and case.path_parameters:  # every other case aims at rows that exist
                case.path_parameters = {k: real.get(k, v) for k, v in case.path_parameters.items()}
            response = case.call_and_validate(headers=headers, checks=checks)
            out.statuses[response.status_code] = out.statuses.get(response.status_code, 0) + 1

        run()

    for result in schema.get_all_operations():
        operation = result.ok()  # an invalid schema fails here
        if (operation.method.upper(), operation.path) in SIGN_OUTS:
            continue  # they would end the identity's session for every later case
        for name, headers in identities.items():
            try:
                fuzz(operation, headers)
            except Exception as exc:  # collected, so one run reports every failing operation
                out.failures.append(
                    f"{operation.method.upper()} {operation.path} as {name}: {exc}"[:2000]
                )
    return out


def _study_identities(
    app: FastAPI, study: StudySetup
) -> tuple[dict[str, dict[str, str]], dict[str, Any]]:
    reader = study.reader_client(app, 0)
    identities: dict[str, dict[str, str]] = {
        "coordinator": study.coordinator,
        "reader": {"cookie": f"{READER_COOKIE}={reader.cookies[READER_COOKIE]}"},
    }
    assert reader.get("/api/reader/me").json()["next_position"] == 1
    study_row = (
        TestClient(app, headers=study.coordinator).get(f"/api/studies/{study.study_id}").json()
    )
    real = {
        "study_id": study.study_id, "reader_id": study.invitations[1]["reader"]["id"], "position": 1,
        "pie_set_id": study_row["pie_set_id"], "token": study.invitations[1]["token"],
    }  # fmt: skip
    return identities, real


@pytest.mark.database  # out-of-range numbers reach each database's driver differently
@pytest.mark.slow
def test_fuzz_the_api_as_coordinator_and_as_reader(
    app: FastAPI, make_study: Callable[..., StudySetup]
) -> None:
    identities, real = _study_identities(app, make_study(readers=2))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    result = fuzz_schema(
        schema, identities, real, [not_a_server_error, response_schema_conformance]
    )
    assert not result.failures, "\n\n".join(result.failures)
    assert result.cases >= 1000, f"only {result.cases} cases"
    print(
        f"fuzzing the API: {result.cases} cases, statuses {dict(sorted(result.statuses.items()))}"
    )
    assert sum(n for s, n in result.statuses.items() if s < 300) > 100  # past validation too


def pages_schema(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI description of the HTML routes (left out of the API's own schema)."""
    routes = []
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        for context in contexts() if contexts else []:
            if not context.include_in_schema:
                shown = copy.copy(context)
                object.__setattr__(shown, "include_in_schema", True)
                routes.append(RouteContext(shown.original_route, shown))
    assert len(routes) >= 12, [r.path for r in routes]
    schema: dict[str, Any] = json.loads(
        json.dumps(get_openapi(title="pages", version="1", routes=routes))
    )
    return schema


class WithPagesSchema:
    """The application, plus the pages' schema at PAGES_SCHEMA for schemathesis to load."""

    def __init__(self, app: FastAPI):
        self.app = app
        self.schema = pages_schema(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PAGES_SCHEMA:
            await JSONResponse(self.schema)(scope, receive, send)
            return
        await self.app(scope, receive, send)


@pytest.mark.slow
def test_fuzz_the_pages_as_every_visitor(
    app: FastAPI, users: Users, make_study: Callable[..., StudySetup]
) -> None:
    identities, real = _study_identities(app, make_study(readers=2))
    identities["researcher"] = users.headers("rita", Role.researcher)
    identities["anonymous"] = {}
    schema = schemathesis.openapi.from_asgi(PAGES_SCHEMA, WithPagesSchema(app))
    result = fuzz_schema(schema, identities, real, [not_a_server_error])
    assert not result.failures, "\n\n".join(result.failures)
    print(
        f"fuzzing the pages: {result.cases} cases, statuses {dict(sorted(result.statuses.items()))}"
    )
    assert result.cases >= 500, f"only {result.cases} cases"
    assert not [s for s in result.statuses if s >= 500]
    assert sum(n for s, n in result.statuses.items() if s == 200) > 50  # pages were shown

"""Schemathesis against the OpenAPI schema, as a coordinator and as a reader: no 5xx, and every
response conforms to the schema. Bounded: MAX_EXAMPLES cases per operation and identity (at
least 1,000 in all, counted)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from backend.reading.deps import READER_COOKIE
from tests.backend.conftest import StudySetup

SIGN_OUTS = {("POST", "/api/auth/logout"), ("DELETE", "/api/reader/session")}
MAX_EXAMPLES = int(os.environ.get("PIESTUDY_FUZZ_EXAMPLES", "20"))


def test_fuzz_the_api_as_coordinator_and_as_reader(
    app: FastAPI, make_study: Callable[..., StudySetup]
) -> None:
    study = make_study(readers=2)
    reader = study.reader_client(app, 0)
    identities: dict[str, dict[str, str]] = {
        "coordinator": study.coordinator,
        "reader": {"cookie": f"{READER_COOKIE}={reader.cookies[READER_COOKIE]}"},
    }
    first = reader.get("/api/reader/me").json()
    assert first["next_position"] == 1
    study_row = (
        TestClient(app, headers=study.coordinator).get(f"/api/studies/{study.study_id}").json()
    )
    real = {
        "study_id": study.study_id, "reader_id": study.invitations[1]["reader"]["id"], "position": 1,
        "pie_set_id": study_row["pie_set_id"],
    }  # fmt: skip
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    checks: list[Any] = [not_a_server_error, response_schema_conformance]
    cases = 0
    statuses: dict[int, int] = {}
    failures: list[str] = []

    def fuzz(operation: Any, headers: dict[str, str]) -> None:
        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
            suppress_health_check=list(HealthCheck),
        )  # fmt: skip
        def run(case: Any) -> None:
            nonlocal cases
            cases += 1
            if cases % 2 and case.path_parameters:  # every other case aims at rows that exist
                case.path_parameters = {k: real.get(k, v) for k, v in case.path_parameters.items()}
            response = case.call_and_validate(headers=headers, checks=checks)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        run()

    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an invalid schema fails here
        if (operation.method.upper(), operation.path) in SIGN_OUTS:
            continue  # they would end the identity's session for every later case
        for name, headers in identities.items():
            try:
                fuzz(operation, headers)
            except Exception as exc:  # collected, so one run reports every failing operation
                failures.append(
                    f"{operation.method.upper()} {operation.path} as {name}: {exc}"[:2000]
                )
    assert not failures, "\n\n".join(failures)
    assert cases >= 1000, f"only {cases} cases"
    print(f"fuzzing: {cases} cases, statuses {dict(sorted(statuses.items()))}")
    assert sum(n for s, n in statuses.items() if s < 300) > 100  # it got past validation too

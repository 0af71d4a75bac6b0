from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import Users
from tests.factories import make_dataset, make_pie_set


@dataclass
class StudySetup:
    study_id: int
    coordinator: dict[str, str]
    invitations: list[dict[str, Any]]

    def reader_client(self, app: FastAPI, index: int) -> TestClient:
        """A fresh browser for reader `index`, signed in through the invitation link."""
        c = TestClient(app)
        r = c.get(f"/r/{self.invitations[index]['token']}", follow_redirects=False)
        assert r.status_code == 303, r.text
        return c


@pytest.fixture
def make_study(
    client: TestClient, users: Users, session: Session, tmp_path: Path
) -> Callable[..., StudySetup]:
    def build(
        readers: int = 2, n_images: int = 200, n_pies: int = 60, status: str = "open", **design: Any
    ) -> StudySetup:
        ds = make_dataset(session, tmp_path, n_images)
        ps = make_pie_set(session, ds, n_pies=n_pies)
        session.commit()
        coordinator = users.headers("coordinator")
        body = {
            "name": "Reading study",
            "pie_set_id": ps.id,
            "seed": 3,
            "planned_readers": readers,
            **design,
        }
        study = client.post("/api/studies", json=body, headers=coordinator).json()
        names = [f"Dr {chr(65 + i)}" for i in range(readers)]
        invitations = client.post(
            f"/api/studies/{study['id']}/readers",
            json={"display_names": names},
            headers=coordinator,
        ).json()
        if status != "draft":
            client.post(
                f"/api/studies/{study['id']}/status", json={"status": "open"}, headers=coordinator
            )
        if status == "closed":
            client.post(
                f"/api/studies/{study['id']}/status", json={"status": "closed"}, headers=coordinator
            )
        return StudySetup(study["id"], coordinator, invitations)

    return build

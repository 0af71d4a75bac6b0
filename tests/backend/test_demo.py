"""`piestudy demo`: builds everything once, then reuses it."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from backend.config import Settings
from backend.db import make_sessionmaker
from backend.demo import DemoConfig, build_demo

SMALL = DemoConfig(
    images=300, seeds=(0, 1), epochs=1, cases_per_reader=2, image_size=32, practice_cases=0
)


def test_demo_builds_a_study_with_six_working_links_then_reuses_it(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    lines: list[str] = []
    first = build_demo(make_sessionmaker(engine), settings, lines.append, SMALL)
    assert first.built and len(first.links) == 6
    assert any("run 1: succeeded" in line for line in lines)
    assert any("PIEs of" in line for line in lines)

    login = client.post(
        "/api/auth/login", json={"username": first.coordinator, "password": first.password}
    )
    assert login.status_code == 200, login.text
    token = login.json()["token"]
    study = client.get(
        f"/api/studies/{first.study_id}", headers={"authorization": f"Bearer {token}"}
    ).json()
    assert study["status"] == "open"
    for name, url in first.links:
        assert url.startswith("http://testserver/r/")
        reader = TestClient(client.app)
        assert (
            reader.get(url.removeprefix("http://testserver"), follow_redirects=False).status_code
            == 303
        ), name
        me = reader.get("/api/reader/me").json()
        assert me["display_name"] == name and me["progress"]["total"] == 2

    kept = json.loads((settings.var_dir.resolve() / "demo" / "demo.json").read_text())
    assert kept["study_id"] == first.study_id
    said_again: list[str] = []
    again = build_demo(make_sessionmaker(engine), settings, said_again.append, SMALL)
    assert not again.built and again.links == first.links and again.password == first.password
    assert said_again == ["the demo study exists already: reusing it"]  # nothing made again


def test_the_demo_has_the_papers_study_shape() -> None:
    """6 readers x 40 cases (20 PIEs + 20 non-PIEs), no image shared, and the practice cases:
    the demo's test split holds enough PIEs at its percentile for all of them."""
    from ml.data.synth import plan

    demo = DemoConfig()
    assert (demo.cases_per_reader, demo.image_size) == (40, 512)
    test = sum(item.split == "test" for item in plan(demo.images, 0, demo.splits))
    pies_needed = 6 * demo.cases_per_reader // 2 + demo.practice_cases // 2
    assert int(test * demo.percentile / 100) >= pies_needed

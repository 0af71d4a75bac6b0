from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from backend.cli import app as cli
from backend.config import Settings
from backend.db import make_sessionmaker
from backend.piesets.models import PieSet, PieSetMember
from backend.piesets.service import FrozenPieSetError, import_pie_set
from ml.pieset_file import parse_pieset_csv
from tests.factories import make_dataset, pieset_csv

# behaviour that depends on the database: run on SQLite and again on PostgreSQL
pytestmark = pytest.mark.database


@pytest.fixture
def dataset_id(session: Session, tmp_path: Path) -> int:
    ds = make_dataset(session, tmp_path, 40)
    session.commit()
    return ds.id


def upload(
    client: TestClient, headers: dict[str, str], dataset_id: int, content: bytes, name: str = "pies"
):
    return client.post(
        "/api/piesets/import",
        data={
            "dataset_id": str(dataset_id),
            "name": name,
            "parameters": '{"k_star": 0.9, "percentile": 5}',
        },
        files={"file": ("pies.csv", content, "text/csv")},
        headers=headers,
    )


def ids(n: int = 40) -> list[str]:
    return [f"img_{i:05d}.png" for i in range(n)]


def test_import_versions_and_members(
    client: TestClient, researcher_headers: dict[str, str], dataset_id: int
) -> None:
    content = pieset_csv(ids(), set(ids()[:8]))
    r = upload(client, researcher_headers, dataset_id, content)
    assert r.status_code == 201, r.text
    first = r.json()
    assert (first["version"], first["member_count"], first["pie_count"]) == (1, 40, 8)
    assert first["parameters"] == {"k_star": 0.9, "percentile": 5}
    assert len(first["provenance"]["sha256"]) == 64
    second = upload(client, researcher_headers, dataset_id, content).json()
    assert second["version"] == 2 and second["id"] != first["id"]
    members = client.get(
        f"/api/piesets/{first['id']}/members?is_pie=true", headers=researcher_headers
    ).json()
    assert members["total"] == 8
    # ranked by score, lowest first; all PIEs score below every non-PIE in this fixture
    assert [m["rank"] for m in members["items"]] == list(range(1, 9))


def test_two_imports_of_one_name_at_once_get_consecutive_versions(
    engine: Engine, dataset_id: int
) -> None:
    # Two workers finishing runs of one name, or a run finishing during an upload: the second
    # import reads the latest version while the first one's new version is not yet committed.
    content = pieset_csv(ids(), set(ids()[:8]))
    first_flushed = threading.Event()
    versions: list[int] = []
    errors: list[BaseException] = []

    def importer(first: bool) -> None:
        try:
            with make_sessionmaker(engine)() as s, s.begin():
                if not first:
                    first_flushed.wait(10)
                pie_set = import_pie_set(s, dataset_id=dataset_id, name="regen", csv_bytes=content)
                if first:
                    first_flushed.set()
                    threading.Event().wait(0.5)  # the second import starts meanwhile
                versions.append(pie_set.version)
        except BaseException as exc:
            first_flushed.set()
            errors.append(exc)

    threads = [threading.Thread(target=importer, args=(first,)) for first in (True, False)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert sorted(versions) == [1, 2]


def test_rejects_bad_rows_and_imports_nothing(
    client: TestClient, researcher_headers: dict[str, str], dataset_id: int, session: Session
) -> None:
    rows = [
        "image,is_pie,score",
        "img_00000.png,1,-0.2",
        "img_00000.png,0,0.5",
        "nope.png,0,0.5",
        "img_00002.png,maybe,0.1",
        "img_00003.png,0,abc",
        "img_00004.png,0,1.5",
    ]
    r = upload(client, researcher_headers, dataset_id, ("\n".join(rows) + "\n").encode())
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail["total"] == 5
    assert [p["line"] for p in detail["problems"]] == [3, 5, 6, 7, 4]
    assert session.scalar(select(func.count()).select_from(PieSet)) == 0
    session.rollback()


def test_needs_both_groups_and_columns(
    client: TestClient, researcher_headers: dict[str, str], dataset_id: int
) -> None:
    only_non = pieset_csv(ids(), set())
    assert "both PIEs" in upload(client, researcher_headers, dataset_id, only_non).json()["error"]
    assert (
        "missing column"
        in upload(client, researcher_headers, dataset_id, b"image,score\na,0.1\n").json()["error"]
    )
    assert (
        "UTF-8" in upload(client, researcher_headers, dataset_id, b"\xff\xfe\x00").json()["error"]
    )


def test_undefined_scores_are_kept_unranked() -> None:
    parsed = parse_pieset_csv("image,is_pie,score\na,1,\nb,0,0.5\nc,0,nan\nd,1,-0.1\n")
    assert not parsed.problems
    assert {r.image: r.rank for r in parsed.rows} == {"a": None, "b": 2, "c": None, "d": 1}


def test_pie_sets_are_frozen(
    client: TestClient, researcher_headers: dict[str, str], dataset_id: int, session: Session
) -> None:
    pie_set_id = upload(
        client, researcher_headers, dataset_id, pieset_csv(ids(), {"img_00001.png"})
    ).json()["id"]
    member = session.scalars(
        select(PieSetMember).where(PieSetMember.pie_set_id == pie_set_id)
    ).first()
    assert member is not None
    member.is_pie = not member.is_pie
    with pytest.raises(FrozenPieSetError):
        session.flush()
    session.rollback()
    pie_set = session.get(PieSet, pie_set_id)
    assert pie_set is not None
    pie_set.name = "renamed"
    with pytest.raises(FrozenPieSetError):
        session.flush()
    session.rollback()


def test_coordinators_read_but_cannot_import(
    client: TestClient, users, dataset_id: int, researcher_headers: dict[str, str]
) -> None:
    upload(client, researcher_headers, dataset_id, pieset_csv(ids(), {"img_00001.png"}))
    coordinator = users.headers("cole")
    assert len(client.get("/api/piesets", headers=coordinator).json()) == 1
    assert (
        upload(client, coordinator, dataset_id, pieset_csv(ids(), {"img_00001.png"})).status_code
        == 403
    )


def test_unknown_dataset_is_404(client: TestClient, researcher_headers: dict[str, str]) -> None:
    assert upload(client, researcher_headers, 999, pieset_csv(ids(), {"a"})).status_code == 404


def test_cli_import(env_settings: Settings, dataset_id: int, tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_bytes(pieset_csv(ids(), set(ids()[:4])))
    result = CliRunner().invoke(
        cli, ["pieset", "import", "--dataset", "ds", "--name", "p", "--file", str(f)]
    )
    assert result.exit_code == 0, result.output
    assert "40 images, 4 PIEs" in result.output
    bad = CliRunner().invoke(
        cli, ["pieset", "import", "--dataset", "missing", "--name", "p", "--file", str(f)]
    )
    assert bad.exit_code == 2 and "not found" in bad.output

"""DICOM datasets: every image is opened at import, and what readers receive is a de-identified
rendering: never the dataset's file, never a value of its header."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import shutil
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.auth.models import Role
from backend.datasets.models import Dataset
from backend.datasets.models import Image as ImageRow
from backend.derivatives import DISPLAY, FULL, derived_image, rendering
from ml.data.radiograph import read_radiograph
from tests.conftest import Users
from tests.factories import make_pie_set, write_dicom

SHARED = ("RG1_UNCR.dcm", "RG1_J2KR.dcm", "RG3_UNCR.dcm")
# header values of patients and institutions (shorter ones, such as a sex of 'F', would match by
# chance in any binary file and say nothing)
IDENTIFYING = (
    "PatientName", "PatientID", "PatientBirthDate", "OtherPatientIDs", "PatientAddress",
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName",
    "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName", "StationName",
    "AccessionNumber", "StudyID", "StudyDate", "SeriesDate", "ContentDate", "AcquisitionDate",
    "InstanceCreationDate", "StudyTime", "SeriesTime", "StudyInstanceUID", "SeriesInstanceUID",
    "SOPInstanceUID", "DeviceSerialNumber",
)  # fmt: skip


def tag_values(paths: list[Path]) -> set[str]:
    import pydicom

    values: set[str] = set()
    for path in paths:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for keyword in IDENTIFYING:
            value = ds.get(keyword)
            if value is None:
                continue
            text = str(value)
            values |= {text, *text.split("^")}
    return {v for v in values if len(v) >= 4}


def dicom_dataset(root: Path, shared_data: Path, n_generated: int = 9) -> tuple[Path, Path]:
    """The shared DICOM files and generated ones, with a plain labels file."""
    images = root / "images"
    images.mkdir(parents=True)
    names = []
    for name in SHARED:
        shutil.copy(shared_data / "dicom" / name, images / name)
        names.append(name)
    rng = np.random.default_rng(3)
    for i in range(n_generated):
        name = f"Smith_John_{i}.dcm"  # file names carry names too, in real exports
        pixels = (rng.random((96, 80)) * 4095).astype(np.uint16)
        write_dicom(
            images / name,
            pixels,
            photometric="MONOCHROME1" if i % 2 else "MONOCHROME2",
            window=(2048, 4096) if i % 3 else None,
            spacing=(0.2, 0.2) if i % 2 else None,
            patient=f"Smith^John{i}",
        )
        names.append(name)
    labels = root / "labels.csv"
    with labels.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "labels"])
        for i, name in enumerate(names):
            w.writerow([name, "Effusion" if i % 2 else "No Finding"])
    return labels, images


def import_body(name: str, labels: Path, images: Path) -> dict[str, Any]:
    return {
        "name": name,
        "format": "plain",
        "labels_files": [str(labels)],
        "image_dir": str(images),
        "classes": ["No Finding", "Effusion"],
    }


def counts(session: Session) -> tuple[int, int]:
    out = (
        session.scalar(select(func.count()).select_from(Dataset)) or 0,
        session.scalar(select(func.count()).select_from(ImageRow)) or 0,
    )
    session.rollback()
    return out


def test_dicom_images_import_and_an_unreadable_one_stops_the_import(
    client: TestClient,
    researcher_headers: dict[str, str],
    session: Session,
    tmp_path: Path,
    shared_data: Path,
) -> None:
    labels, images = dicom_dataset(tmp_path / "good", shared_data, n_generated=2)
    r = client.post(
        "/api/datasets/import",
        json=import_body("dicom", labels, images),
        headers=researcher_headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["image_count"] == 5
    assert counts(session) == (1, 5)

    labels, images = dicom_dataset(tmp_path / "bad", shared_data, n_generated=2)
    write_dicom(images / "cine.dcm", np.zeros((4, 16, 16)))
    write_dicom(images / "photo.dcm", np.zeros((16, 16, 3)), photometric="RGB")
    Image.fromarray(np.full((32, 32), 9, np.uint8)).save(images / "cut.png")
    (images / "cut.png").write_bytes((images / "cut.png").read_bytes()[:50])
    with labels.open("a") as f:
        f.write("cine.dcm,Effusion\nphoto.dcm,Effusion\ncut.png,Effusion\n")
    r = client.post(
        "/api/datasets/import", json=import_body("bad", labels, images), headers=researcher_headers
    )
    assert r.status_code == 422
    problems = [p["message"] for p in r.json()["detail"]["problems"]]
    assert any("'cine.dcm' cannot be read: multi-frame DICOM (4 frames)" in p for p in problems)
    assert any("'photo.dcm' cannot be read: colour DICOM (RGB" in p for p in problems)
    assert any("'cut.png' cannot be read: not a readable image" in p for p in problems)
    assert len(problems) == 3
    assert counts(session) == (1, 5)  # nothing written


def open_study(
    client: TestClient,
    users: Users,
    session: Session,
    labels: Path,
    images: Path,
    *,
    n_pies: int,
    cases: int,
) -> tuple[int, dict[str, str], str, int]:
    """Import the dataset, make a PIE set and an open one-reader study of it: the study id, the
    coordinator's headers, the reader's invitation token and reader id."""
    researcher = users.headers("researcher", Role.researcher)
    r = client.post(
        "/api/datasets/import", json=import_body("dicom", labels, images), headers=researcher
    )
    assert r.status_code == 201, r.text
    ds = session.get(Dataset, r.json()["id"])
    assert ds is not None
    ps = make_pie_set(session, ds, n_pies=n_pies)
    session.commit()
    coordinator = users.headers("coordinator")
    design = {"name": "DICOM", "pie_set_id": ps.id, "cases_per_reader": cases, "planned_readers": 1}
    study = client.post("/api/studies", json=design, headers=coordinator).json()["id"]
    enrolled = client.post(
        f"/api/studies/{study}/readers", json={"display_names": ["Dr D"]}, headers=coordinator
    ).json()
    client.post(f"/api/studies/{study}/status", json={"status": "open"}, headers=coordinator)
    return study, coordinator, enrolled[0]["token"], enrolled[0]["reader"]["id"]


def png_chunks(data: bytes) -> list[str]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        chunks.append(data[at + 4 : at + 8].decode("ascii"))
        at += 12 + length
    return chunks


def test_readers_receive_renderings_without_any_header_value(
    app: FastAPI,
    client: TestClient,
    users: Users,
    session: Session,
    tmp_path: Path,
    shared_data: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    labels, images = dicom_dataset(tmp_path, shared_data)
    sources = sorted(images.iterdir())
    secrets = tag_values(sources) | {p.stem for p in sources}
    assert {"CompressedSamples^RG1", "9RG1", "19400305", "Philips Medical Systems Hamburg"} <= (
        secrets
    )
    originals = {hashlib.sha256(p.read_bytes()).hexdigest() for p in sources}
    study, coordinator, token, reader_id = open_study(
        client, users, session, labels, images, n_pies=6, cases=12
    )

    reader = TestClient(app)
    received: list[tuple[str, bytes]] = []

    def got(name: str, response: Any) -> Any:
        assert response.status_code in (200, 303), (name, response.text)
        head = "\n".join(f"{k}: {v}" for k, v in response.headers.items()).encode()
        received.append((name, response.content + b"\n" + head))
        return response

    got("link", reader.get(f"/r/{token}", follow_redirects=False))
    got("welcome", reader.get("/read"))
    got("me", reader.get("/api/reader/me"))
    got("cases", reader.get("/api/reader/cases"))
    by_position = {
        a["position"]: a["external_id"]
        for a in client.get(
            f"/api/studies/{study}/readers/{reader_id}/assignments",
            headers=coordinator,
        ).json()
    }
    for p in range(1, 13):
        got("page", reader.get(f"/read/cases/{p}"))
        case = got("case", reader.get(f"/api/reader/cases/{p}")).json()
        info = got("rendering", reader.get(f"/api/reader/cases/{p}/rendering")).json()
        assert case["rendering"] == info  # the page needs no request of its own for it
        full = got("full", reader.get(f"/api/reader/cases/{p}/image?size=full")).content
        display = got("display", reader.get(f"/api/reader/cases/{p}/image?size=display")).content
        for png in (full, display):
            assert hashlib.sha256(png).hexdigest() not in originals
            assert set(png_chunks(png)) <= {"IHDR", "IDAT", "IEND"}  # no text, no EXIF, no time
        # the full rendering holds the source's values exactly: value = slope * grey + intercept
        source = read_radiograph(images / by_position[p])
        grey = np.asarray(Image.open(io.BytesIO(full)), dtype=np.float64)
        assert Image.open(io.BytesIO(full)).mode.startswith("I;16")
        assert grey.shape == source.values.shape == (info["rows"], info["columns"])
        assert np.array_equal(np.rint(info["slope"] * grey + info["intercept"]), source.values)
        assert (info["window_center"], info["window_width"]) == (
            source.window.center,
            source.window.width,
        )
        assert (info["slope"] < 0) == source.invert
        spacing = source.pixel_spacing_mm
        assert info["pixel_spacing_mm"] == (list(spacing) if spacing else None)
        assert max(Image.open(io.BytesIO(display)).size) <= 1024
        got(
            "answer",
            reader.post(
                f"/api/reader/cases/{p}/answer",
                json={"answer_id": f"dicom-{p:04d}", "agree": True, "quality": 3, "difficulty": 2},
            ),
        )
    got("done", reader.get("/read/done"))

    leaks = [
        (name, secret) for name, data in received for secret in secrets if secret.encode() in data
    ]
    assert leaks == []
    assert [s for s in secrets if s in caplog.text] == []
    # the coordinator's export keeps the dataset's own ids
    wide = client.get(f"/api/studies/{study}/export?format=wide", headers=coordinator).text
    assert {row["image"] for row in csv.DictReader(io.StringIO(wide))} == set(by_position.values())


def test_an_image_that_cannot_be_rendered_names_neither_file_nor_patient(
    app: FastAPI,
    client: TestClient,
    users: Users,
    session: Session,
    tmp_path: Path,
    shared_data: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    labels, images = dicom_dataset(tmp_path, shared_data, n_generated=3)
    _, _, token, _ = open_study(client, users, session, labels, images, n_pies=3, cases=6)
    for path in images.glob("Smith_John_*.dcm"):  # damaged after the import
        path.write_bytes(b"\0" * 128 + b"DICM" + b"PatientName Smith^John")
    reader = TestClient(app)
    reader.get(f"/r/{token}")
    failed = [reader.get(f"/api/reader/cases/{p}/image?size=display") for p in range(1, 7)]
    broken = [r for r in failed if r.status_code != 200]
    assert len(broken) == 3
    for response in broken:
        assert response.status_code == 503
        assert response.json()["error"] == (
            "the image of this case cannot be shown; tell the study coordinator"
        )
    assert "cannot be rendered" in caplog.text
    assert "Smith" not in caplog.text and "John" not in caplog.text


def test_renderings_of_the_nih_pngs_keep_their_pixels_but_never_their_bytes(
    shared_data: Path, tmp_path: Path
) -> None:
    sources = sorted((shared_data / "nih-cxr14-fullres").glob("*.png"))
    assert len(sources) == 3
    for source in sources:
        original = np.asarray(Image.open(source).convert("L"))
        for kind in (DISPLAY, FULL):
            out = derived_image(source, kind, tmp_path / "media")
            # Pillow's defaults re-encode these files byte for byte: the salted chunking does not
            assert (
                hashlib.sha256(out.read_bytes()).digest()
                != hashlib.sha256(source.read_bytes()).digest()
            )
            assert set(png_chunks(out.read_bytes())) == {"IHDR", "IDAT", "IEND"}
            shown = np.asarray(Image.open(out))
            if kind is DISPLAY:
                assert np.array_equal(shown, original)
            else:  # 16 bits over the full range, and back to the source's levels exactly
                info = rendering(source, tmp_path / "media")
                assert shown.max() == 65535 and shown.min() == 0
                assert np.array_equal(np.rint(info.slope * shown + info.intercept), original)
    # another installation (another salt) cuts the same image differently
    a = derived_image(sources[0], DISPLAY, tmp_path / "one").read_bytes()
    b = derived_image(sources[0], DISPLAY, tmp_path / "two").read_bytes()
    assert a != b

"""Test data made on the fly: users, image folders with label files, PIE sets."""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from sqlalchemy.orm import Session

from backend.auth import service as auth_service
from backend.auth.models import Role, User
from backend.auth.schemas import UserCreate
from backend.datasets import service as datasets_service
from backend.datasets.models import Dataset
from backend.piesets import service as piesets_service
from backend.piesets.models import PieSet

PASSWORD = "correct-horse-battery"
CLASSES = ("No Finding", "Effusion", "Atelectasis", "Hernia")


def make_user(session: Session, username: str, role: Role = Role.coordinator) -> User:
    return auth_service.create_user(
        session, UserCreate(username=username, password=PASSWORD, role=role)
    )


def write_png(path: Path, seed: int = 0, size: int = 16) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    img = PILImage.new("L", (size, size))
    img.putdata([rng.randrange(256) for _ in range(size * size)])
    img.save(path)


@dataclass(frozen=True)
class PlainFixture:
    image_dir: Path
    labels: Path
    ids: list[str]


def plain_dataset_files(
    root: Path, n: int, *, seed: int = 0, with_split: bool = False
) -> PlainFixture:
    """n images and a plain labels CSV (image,labels[,patient,split])."""
    rng = random.Random(seed)
    image_dir = root / "images"
    ids = [f"img_{i:05d}.png" for i in range(n)]
    for i, name in enumerate(ids):
        write_png(image_dir / name, seed=i)
    labels = root / "labels.csv"
    with labels.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "labels", "patient", "split"] if with_split else ["image", "labels"])
        for i, name in enumerate(ids):
            found = [c for c in CLASSES[1:] if rng.random() < 0.3] or ["No Finding"]
            row = [name, "|".join(found)]
            if with_split:
                row += [f"p{i // 2}", ("train", "val", "test")[(i // 2) % 3]]
            w.writerow(row)
    return PlainFixture(image_dir, labels, ids)


def make_dataset(session: Session, root: Path, n: int, name: str = "ds") -> Dataset:
    files = plain_dataset_files(root, n)
    return datasets_service.import_dataset(
        session,
        name=name,
        fmt="plain",
        labels_files=[files.labels],
        image_dir=files.image_dir,
        classes=list(CLASSES),
    )


def make_split_dataset(session: Session, root: Path, n: int = 60, name: str = "runs-ds") -> Dataset:
    """A plain dataset with patient-disjoint train/val/test splits (what a training run needs)."""
    files = plain_dataset_files(root, n, with_split=True)
    return datasets_service.import_dataset(
        session, name=name, fmt="plain", labels_files=[files.labels], image_dir=files.image_dir,
        classes=list(CLASSES),
    )  # fmt: skip


def pieset_csv(ids: Sequence[str], pies: set[str], *, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    lines = ["image,is_pie,score"]
    for ext in ids:
        score = rng.uniform(-0.5, 0.2) if ext in pies else rng.uniform(0.3, 1.0)
        lines.append(f"{ext},{int(ext in pies)},{score:.6f}")
    return ("\n".join(lines) + "\n").encode()


def make_pie_set(
    session: Session, dataset: Dataset, n_pies: int, name: str = "pies", seed: int = 0
) -> PieSet:
    ids = sorted(datasets_service_ids(session, dataset))
    rng = random.Random(seed)
    pies = set(rng.sample(ids, n_pies))
    return piesets_service.import_pie_set(
        session, dataset_id=dataset.id, name=name, csv_bytes=pieset_csv(ids, pies, seed=seed)
    )


def datasets_service_ids(session: Session, dataset: Dataset) -> list[str]:
    from backend.datasets import repository

    return list(repository.image_ids_by_external(session, dataset.id))


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int = 12,
    rescale: tuple[float, float] | None = None,
    window: tuple[float, float] | None = None,
    voi_lut: tuple[int, int] | None = None,
    spacing: tuple[float, float] | None = None,
    patient: str = "Doe^Jane",
) -> Path:
    """A DICOM file as a modality writes one (uncompressed). pixels: uint16 [rows, columns], or
    [frames, rows, columns], or [rows, columns, 3] with photometric RGB. voi_lut: (entries,
    first mapped value) of a linear VOI LUT."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName = patient
    ds.PatientID = "PID-" + patient.split("^")[0]
    ds.InstitutionName = "St Example Hospital"
    ds.Modality = "CR"
    colour = photometric == "RGB"
    frames = pixels.shape[0] if pixels.ndim == 3 and not colour else 1
    ds.Rows, ds.Columns = pixels.shape[1:3] if frames > 1 else pixels.shape[:2]
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel = 3 if colour else 1
    if colour:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 8 if colour else 16
    ds.BitsStored = 8 if colour else bits_stored
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if voi_lut is not None:
        entries, first = voi_lut
        item = Dataset()
        item.LUTDescriptor = [entries, first, 16]
        item.LUTData = np.linspace(0, 65535, entries).round().astype(np.uint16).tobytes()
        ds.VOILUTSequence = [item]
    if spacing is not None:
        ds.PixelSpacing = list(spacing)
    ds.PixelData = pixels.astype(np.uint8 if colour else np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path

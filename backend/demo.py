"""`piestudy demo`: a complete demo study from nothing, on CPU, in a few minutes.

Steps (each one skipped when its result already exists, so a second run serves within seconds):
the schema; a synthetic long-tailed chest-X-ray-like dataset; a PIE regeneration run that trains
a small population, prunes it at the 20 sparsities, finds the PIEs and writes the analysis
report (executed here by an in-process worker, exactly as `piestudy worker` would); a
coordinator account; a 6-reader study on the new PIE set, open for reading. The coordinator's
password and the six invitation links are kept in var/demo/demo.json (a local demo's secrets,
so that a second run can print them again), then printed.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from backend.auth import repository as auth_repo
from backend.auth import service as auth_service
from backend.auth.models import Role
from backend.auth.schemas import UserCreate
from backend.config import Settings
from backend.datasets import repository as datasets_repo
from backend.datasets import service as datasets_service
from backend.runs import repository as runs_repo
from backend.runs import service as runs_service
from backend.runs.models import RunStatus
from backend.runs.schemas import RunCreate
from backend.runs.worker import Worker
from backend.studies import repository as studies_repo
from backend.studies import service as studies_service
from backend.studies.models import StudyStatus
from backend.studies.profile import ProfileField
from backend.studies.schemas import StudyCreate
from backend.studies.service import invitation_url
from ml.fileio import atomic_write
from ml.runparams import RunOptions

DATASET = "demo-synthetic"
PIE_SET = "demo-pies"
STUDY = "Demo reader study"
COORDINATOR = "coordinator"
RESEARCHER = "researcher"
READERS = tuple(f"Reader {i}" for i in range(1, 7))
# What a reader is asked once, before the first case (exported as profile_<key>).
DEMO_PROFILE = [
    ProfileField(
        key="years", label="Years reading chest X-rays", kind="integer", minimum=0, maximum=60
    ),
    ProfileField(
        key="role",
        label="Role",
        kind="choice",
        choices=["Thoracic radiologist", "General radiologist", "Radiology resident", "Other"],
    ),
]


@dataclass(frozen=True)
class DemoConfig:
    """The paper's study shape: 6 readers x 40 cases (20 PIEs + 20 non-PIEs each, no image
    shown to two readers), so 120 PIEs and 120 non-PIEs, plus 2 practice cases; at the 10th
    percentile that takes 1,210 test images or more. The radiographs are drawn at 512 px, what the
    readers see; the population trains and predicts at 32 px (each image decoded once and
    resized), which is what lets 3 seeds x 20 sparsities x 1,261 test images run on two CPU
    cores in about a minute."""

    images: int = 2250  # 763 train, 226 val, 1261 test (a patient-disjoint split, seed 0)
    image_size: int = 512  # the radiographs on disk, as readers see them
    train_size: int = 32  # what the models train and predict on
    splits: tuple[float, float, float] = (0.34, 0.1, 0.56)
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 6
    percentile: float = 10.0  # 126 PIEs of the 1261 test images
    cases_per_reader: int = 40  # 20 PIEs + 20 non-PIEs each, no image shared
    practice_cases: int = 2  # read first by every reader (1 PIE, 1 non-PIE), never counted
    threads: int = 2


@dataclass(frozen=True)
class DemoResult:
    coordinator: str
    password: str
    links: list[tuple[str, str]]
    study_id: int
    built: bool


def build_demo(
    sessions: sessionmaker[Session], settings: Settings, say: Callable[[str], None],
    config: DemoConfig = DemoConfig(),
) -> DemoResult:  # fmt: skip
    root = settings.var_dir.resolve() / "demo"
    secrets_file = root / "demo.json"
    kept: dict[str, Any] = json.loads(secrets_file.read_text()) if secrets_file.is_file() else {}
    with sessions() as session:
        study = studies_repo.get_by_name(session, STUDY)
        if study is not None and kept.get("study_id") == study.id:
            say("the demo study exists already: reusing it")
            return DemoResult(
                kept["coordinator"], kept["password"], [tuple(x) for x in kept["links"]],
                study.id, False,
            )  # fmt: skip
    started = time.perf_counter()

    def step(text: str) -> None:
        say(f"[{time.perf_counter() - started:5.1f} s] {text}")

    # 1. the synthetic dataset
    data_dir = root / "data"
    with sessions.begin() as session:
        if datasets_repo.get_by_name(session, DATASET) is None:
            from ml.data.synth import write_dataset

            if not (data_dir / "images").is_dir():
                step(f"generating {config.images} synthetic radiographs ({config.image_size} px)")
                write_dataset(
                    data_dir, config.images, 0, config.image_size, splits=config.splits,
                    workers=config.threads,
                )  # fmt: skip
            ds = datasets_service.import_dataset(
                session, name=DATASET, fmt="nih-cxr-lt",
                labels_files=sorted(data_dir.glob("*_labels_*.csv")), image_dir=data_dir / "images",
            )  # fmt: skip
            step(
                f"imported dataset {DATASET!r}: {ds.image_count} images, {len(ds.classes)} classes"
            )
        dataset_id = datasets_service.find_dataset(session, DATASET).id

    # 2. accounts
    password = kept.get("password") or secrets.token_urlsafe(12)
    with sessions.begin() as session:
        for username, role in ((COORDINATOR, Role.coordinator), (RESEARCHER, Role.researcher)):
            user = auth_repo.get_user_by_username(session, username)
            if user is None:
                auth_service.create_user(
                    session, UserCreate(username=username, password=password, role=role)
                )
                step(f"created the {role.value} account {username!r}")
            elif "password" not in kept:  # the demo's own account, its password forgotten
                auth_service.set_password(session, user, password)

    # 3. the PIE set, from a regeneration run executed here
    with sessions.begin() as session:
        run = runs_repo.find_by_name(session, PIE_SET, [RunStatus.succeeded])
        if run is None:
            run = runs_repo.find_by_name(session, PIE_SET, [RunStatus.queued, RunStatus.running])
        if run is None:
            researcher = auth_repo.get_user_by_username(session, RESEARCHER)
            assert researcher is not None
            params = RunOptions(
                seeds=config.seeds, image_size=config.train_size, epochs=config.epochs,
                percentile=config.percentile, threads=config.threads,
            )  # fmt: skip
            run = runs_service.create_run(
                session, researcher, RunCreate(dataset_id=dataset_id, name=PIE_SET, params=params),
                settings,
            )  # fmt: skip
            step(
                f"queued run {run.id}: train {len(config.seeds)} models, prune each at 20 "
                "sparsities, find the PIEs, analyse"
            )
        run_id, done = run.id, run.status == RunStatus.succeeded
    if not done:
        worker = Worker(sessions, settings, lease_s=20, heartbeat_s=1, say=lambda line: step(line))
        with sessions.begin() as session:  # a run left over from an interrupted demo
            runs_repo.requeue_if_running(session, run_id)
        worker.serve(drain=True)
    with sessions() as session:
        run = runs_service.get_run(session, run_id)
        if run.status != RunStatus.succeeded or run.result_pie_set_id is None:
            raise RuntimeError(f"the demo's run {run_id} ended {run.status.value}: {run.error}")
        pie_set_id = run.result_pie_set_id

    # 4. the study, open, with six readers
    with sessions.begin() as session:
        coordinator = auth_repo.get_user_by_username(session, COORDINATOR)
        assert coordinator is not None
        study = studies_service.create_study(
            session, coordinator,
            StudyCreate(
                name=STUDY, pie_set_id=pie_set_id, cases_per_reader=config.cases_per_reader,
                planned_readers=len(READERS), seed=0, practice_cases=config.practice_cases,
                profile_fields=DEMO_PROFILE,
            ),
        )  # fmt: skip
        studies_service.change_status(session, study, StudyStatus.open)
        enrolled = studies_service.enroll_readers(session, study.id, coordinator, list(READERS))
        links = [(e.reader.display_name, invitation_url(settings, e.token)) for e in enrolled]
        study_id = study.id
    step(f"study {study_id} is open with {len(links)} readers")
    root.mkdir(parents=True, exist_ok=True)
    atomic_write(
        secrets_file,
        json.dumps(
            {
                "coordinator": COORDINATOR,
                "password": password,
                "links": links,
                "study_id": study_id,
            },
            indent=1,
        ),
    )
    secrets_file.chmod(0o600)
    return DemoResult(COORDINATOR, password, links, study_id, True)

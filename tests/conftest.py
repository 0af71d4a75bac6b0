from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from backend import migrate
from backend.auth.models import Role, User
from backend.config import Settings, get_settings
from backend.db import Base, make_engine, make_sessionmaker
from backend.main import create_app
from tests.dbutil import fresh_database, need, selected_backend
from tests.factories import PASSWORD, make_user

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's database, built with `alembic upgrade head` like a real deployment."""
    with fresh_database(tmp_path_factory.mktemp("db"), selected_backend()) as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def _truncate(engine: Engine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture(autouse=True)
def _clean_database(request: pytest.FixtureRequest) -> Iterator[None]:
    # any test that reaches the database (directly, through the app, or through the CLI)
    engine = request.getfixturevalue("engine") if "database_url" in request.fixturenames else None
    yield
    if engine is not None:
        _truncate(engine)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with make_sessionmaker(engine)() as s:
        yield s


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        env="test",
        database_url=database_url,
        var_dir=tmp_path / "var",
        import_roots=[tmp_path, SHARED_DATA],
        public_url="http://testserver",
        prerender=False,  # tests that want renderings made ahead say so
    )


@pytest.fixture
def app(settings: Settings, engine: Engine) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def env_settings(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Iterator[Settings]:
    """The same settings through the environment, for the CLI."""
    monkeypatch.setenv("PIESTUDY_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("PIESTUDY_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("PIESTUDY_PUBLIC_URL", settings.public_url)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


class Users:
    """Accounts of each role, created on demand and logged in."""

    def __init__(self, session: Session, client: TestClient):
        self.session = session
        self.client = client
        self._headers: dict[str, dict[str, str]] = {}
        self.users: dict[str, User] = {}

    def create(self, username: str, role: Role) -> User:
        user = make_user(self.session, username, role)
        self.session.commit()
        self.users[username] = user
        return user

    def headers(self, username: str, role: Role = Role.coordinator) -> dict[str, str]:
        if username not in self._headers:
            if username not in self.users:
                self.create(username, role)
            r = self.client.post(
                "/api/auth/login", json={"username": username, "password": PASSWORD}
            )
            assert r.status_code == 200, r.text
            self.client.cookies.clear()  # each call authenticates by its own header
            self._headers[username] = {"Authorization": f"Bearer {r.json()['token']}"}
        return self._headers[username]


@pytest.fixture
def users(session: Session, client: TestClient) -> Users:
    return Users(session, client)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        need(f"the real NIH data is not at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def admin_headers(users: Users) -> dict[str, str]:
    return users.headers("admin", Role.admin)


@pytest.fixture
def researcher_headers(users: Users) -> dict[str, str]:
    return users.headers("researcher", Role.researcher)


@pytest.fixture
def coordinator_headers(users: Users) -> dict[str, str]:
    return users.headers("coordinator", Role.coordinator)


def shared_tmp(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A folder of this test run that every xdist worker sees (the run's own base folder)."""
    base = tmp_path_factory.getbasetemp()
    return base if worker_id == "master" else base.parent


class _Quiet:
    def stage(self, name: str, fraction: float) -> None: ...

    def log(self, line: str) -> None: ...

    def check(self) -> None: ...


# What the runs tests train: two seeds of the small CNN, one epoch at 32 px (seconds).
TINY_RUN = {"seeds": [0, 1], "image_size": 32, "epochs": 1, "batch_size": 16}


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The prediction store of a tiny population trained once per test run (by the first worker
    that asks; the others wait for it) on the split dataset of tests.factories.make_split_dataset
    (the same 60 images for every test): for tests that need a store, not the training."""
    from filelock import FileLock

    from ml.data.labels import read_labels, require_ok
    from ml.regenerate import DatasetInputs, regenerate
    from ml.runparams import RunParams
    from tests.factories import CLASSES, plain_dataset_files

    root = shared_tmp(tmp_path_factory, worker_id) / "tiny-population"
    root.mkdir(exist_ok=True)
    store = root / "work" / "store"
    with FileLock(str(root / ".lock")):
        if not (store / "manifest.json").is_file():
            files = plain_dataset_files(root / "data", 60, with_split=True)
            table = require_ok(read_labels("plain", [files.labels], classes=list(CLASSES)))
            inputs = DatasetInputs("runs-ds", CLASSES, files.image_dir, table.records)
            regenerate(RunParams(**TINY_RUN), inputs, root / "work", _Quiet())
    return store


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest tests first: with the suite spread over parallel workers (pytest-xdist), a
    long test started last would leave the other workers idle while it finishes."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)

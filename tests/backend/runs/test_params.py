"""A run's parameters are declared once (ml.runparams.RunOptions): the API schema, the
`piestudy run start` options and the research page's form all follow that declaration."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import pytest
import typer
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.auth.models import Role
from backend.cli import app as cli
from backend.config import Settings
from ml.runparams import RunOptions, option_specs
from tests.backend.runs.helpers import split_dataset
from tests.conftest import Users
from tests.factories import make_user


def _cli_options() -> dict[str, Any]:
    command: Any = typer.main.get_command(cli)
    start = command.commands["run"].commands["start"]
    return {p.name: p for p in start.params if p.param_type_name == "option"}


def test_the_cli_options_have_the_declared_defaults_and_bounds() -> None:
    options = _cli_options()
    specs = option_specs()
    assert set(specs) <= set(options)
    for name, spec in specs.items():
        option = options[name]
        default = ",".join(map(str, spec.default)) if name == "seeds" else spec.default
        assert option.default == default, name
        assert option.opts == ["--" + name.replace("_", "-")], name
        assert (option.min, option.max) == (spec.low, spec.high), name
        if spec.choices:
            assert get_args(option.type_descriptor.annotation) == spec.choices, name
        assert spec.help.split(" (")[0] in (option.help or ""), name


def test_the_api_schema_has_the_declared_defaults_and_bounds(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    create = schemas["RunCreate"]["properties"]["params"]
    assert create["$ref"].endswith("/RunOptions")
    properties = schemas["RunOptions"]["properties"]
    keys = {
        "low": "minimum",
        "high": "maximum",
        "above": "exclusiveMinimum",
        "below": "exclusiveMaximum",
    }
    for name, spec in option_specs().items():
        prop = properties[name]
        default = list(spec.default) if name == "seeds" else spec.default
        assert prop.get("default") == default, name
        for attr, key in keys.items():
            assert prop.get(key) == getattr(spec, attr), (name, key)
        if spec.choices:
            assert tuple(prop["enum"]) == spec.choices, name
    assert set(properties) == set(RunOptions.model_fields)


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        ("--image-size", "8", "--image-size"),
        ("--lr", "1.5", "--lr"),
        ("--k-star", "0.33", "--k-star"),
        ("--seeds", "1,1", "--seeds"),
        ("--model", "vgg", "--model"),
    ],
)
def test_the_cli_and_the_api_refuse_the_same_values_naming_them(
    option: str, value: str, named: str, env_settings: Settings, client: TestClient,
    users: Users, session: Session, tmp_path: Path,
) -> None:  # fmt: skip
    from typer.testing import CliRunner

    ds = split_dataset(session, tmp_path)
    make_user(session, "rex", Role.researcher)
    session.commit()
    args = ["run", "start", "--dataset", str(ds.id), "--name", "x", "--as", "rex", option, value]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert named in result.output
    field = option.removeprefix("--").replace("-", "_")
    api_value: Any = [1, 1] if field == "seeds" else value
    if field != "model":
        api_value = api_value if field == "seeds" else float(value)
    r = client.post(
        "/api/runs", json={"dataset_id": ds.id, "name": "x", "params": {field: api_value}},
        headers=users.headers("rita", Role.researcher),
    )  # fmt: skip
    assert r.status_code == 422 and f"params.{field}" in r.json()["error"], r.text


def test_the_cli_queues_a_run_with_the_declared_defaults(
    env_settings: Settings, client: TestClient, users: Users, session: Session, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    ds = split_dataset(session, tmp_path)
    make_user(session, "rex", Role.researcher)
    session.commit()
    args = ["run", "start", "--dataset", str(ds.id), "--name", "x", "--as", "rex", "--epochs", "2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    run = client.get("/api/runs", headers=users.headers("rita", Role.researcher)).json()[0]
    assert run["params"] == {**RunOptions(epochs=2).model_dump(mode="json")}

"""The parameters of a PIE regeneration, declared once.

RunOptions is every parameter but the source, with its default, bounds and help: the API's
`params` object is this model, and the `piestudy run start` options are derived from its fields
(backend.cli.runs). RunParams adds the source and the rules that depend on it; it is what
ml.regenerate runs. Torch-free, so schemas and the CLI import it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ml.measures import Measure
from ml.models.names import ModelName
from ml.store import SPARSITIES

Source = Literal["train", "store", "reference"]
SOURCES: tuple[Source, ...] = ("train", "store", "reference")
Method = Literal["l1", "random"]
PRUNED_SPARSITIES = tuple(k for k in SPARSITIES if k > 0)
ServerPath = Annotated[str | None, Field(max_length=1000)]


class RunOptions(BaseModel):
    """What a regeneration does, whatever its source (what is used depends on the source)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seeds: tuple[Annotated[int, Field(ge=0, le=2**31 - 1)], ...] = Field(
        default=(0, 1, 2), min_length=1, max_length=100,
        description="train: one model per seed (distinct seeds)",
    )  # fmt: skip
    model: ModelName = Field(default="smallcnn", description="train: the architecture")
    image_size: int = Field(default=64, ge=16, le=1024, description="train: pixels per side")
    epochs: int = Field(default=8, ge=1, le=1000, description="train: most epochs per seed")
    patience: int = Field(
        default=3, ge=1, le=1000, description="train: epochs without a better val loss to stop"
    )
    batch_size: int = Field(default=64, ge=1, le=4096, description="train: images per batch")
    lr: float = Field(default=1e-3, gt=0, lt=1, description="train: Adam's learning rate")
    pretrained: ServerPath = Field(
        default=None,
        description="train: a local ImageNet state dict (on the server) for the backbone; "
        "nothing is downloaded",
    )
    k_star: float = Field(
        default=0.9, description="the sparsity whose pruned models are compared with the dense"
    )
    percentile: float = Field(
        default=5.0, gt=0, lt=100, description="PIEs: the lowest this percent of PIE scores"
    )
    measure: Measure = Field(
        default="spearman",
        description="the PIE score: spearman (the paper's), kendall, l1, jensen-shannon or flips",
    )
    min_keep: float = Field(
        default=0.0, ge=0, lt=0.5, description="Global MP's per-layer minimum (0.0005 = 0.05%); 0: off"
    )  # fmt: skip
    method: Method = Field(default="l1", description="l1 (magnitude) or random pruning")
    threads: int = Field(
        default=1, ge=1, le=256, description="torch threads per seed task (the same everywhere)"
    )
    store_path: ServerPath = Field(default=None, description="store: the prediction store")
    reference_dir: ServerPath = Field(
        default=None, description="reference: the folder of the reference pickles"
    )
    reference_labels: ServerPath = Field(
        default=None, description="reference: the test label CSV the pickles' rows follow"
    )

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, seeds: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(seeds)) != len(seeds):
            raise ValueError("give distinct seeds")
        return seeds

    @field_validator("k_star")
    @classmethod
    def _pruned_sparsity(cls, k: float) -> float:
        if round(k, 6) not in {round(s, 6) for s in PRUNED_SPARSITIES}:
            raise ValueError(
                f"one of the pruned sparsities {', '.join(f'{s:g}' for s in PRUNED_SPARSITIES)}"
            )
        return k


class RunParams(RunOptions):
    """A regeneration: its source and its options."""

    source: Source = "train"

    @model_validator(mode="after")
    def _source_needs(self) -> Self:
        if self.source == "store" and not self.store_path:
            raise ValueError("store_path: the prediction store to use")
        if self.source == "reference" and not self.reference_dir:
            raise ValueError("reference_dir: the folder of the reference pickles")
        return self

    def options(self) -> dict[str, Any]:
        """Every option, JSON-ready (what a run keeps as its params)."""
        return self.model_dump(mode="json", exclude={"source"})

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunParams:
        unknown = sorted(set(data) - set(cls.model_fields))
        if unknown:
            raise ValueError(f"unknown parameter(s): {', '.join(unknown)}")
        return cls.model_validate(data)


@dataclass(frozen=True)
class OptionSpec:
    """One option as the CLI and the research page present it, derived from its field."""

    name: str
    default: Any
    help: str
    low: float | None = None  # inclusive bounds
    high: float | None = None
    above: float | None = None  # exclusive bounds
    below: float | None = None
    choices: tuple[str, ...] = ()


def option_specs() -> dict[str, OptionSpec]:
    specs = {}
    for name, field in RunOptions.model_fields.items():
        bounds: dict[str, float] = {}
        for m in field.metadata:
            for attr, key in (("ge", "low"), ("le", "high"), ("gt", "above"), ("lt", "below")):
                if hasattr(m, attr):
                    bounds[key] = getattr(m, attr)
        choices = get_args(field.annotation) if get_origin(field.annotation) is Literal else ()
        specs[name] = OptionSpec(
            name, field.default, field.description or "", choices=choices, **bounds
        )
    return specs

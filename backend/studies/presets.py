"""Window presets of a study's viewer.

A preset is either absolute, a window centre and width in the images' own units (right for a
study whose images share units, e.g. one CR system's), or relative, a range of each image's own
grey levels given as percentiles (right for projection radiographs in general, which have no
fixed units). Without presets of its own a study gets DEFAULT_PRESETS; the file's own window
always comes first.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.studies.profile import check_keys

PRESETS_MAX = 12


class WindowPreset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,29}$")
    label: str = Field(min_length=1, max_length=60)
    center: float | None = Field(default=None, ge=-1e7, le=1e7, allow_inf_nan=False)
    width: float | None = Field(default=None, ge=1, le=1e7, allow_inf_nan=False)
    from_percentile: float | None = Field(default=None, ge=0, le=100)
    to_percentile: float | None = Field(default=None, ge=0, le=100)

    @model_validator(mode="after")
    def _one_kind(self) -> WindowPreset:
        absolute = self.center is not None and self.width is not None
        relative = self.from_percentile is not None and self.to_percentile is not None
        partial = [
            f
            for f in ("center", "width", "from_percentile", "to_percentile")
            if getattr(self, f) is not None
        ]
        if absolute == relative or len(partial) != 2:
            raise ValueError(
                f"{self.key}: give center and width, or from_percentile and to_percentile"
            )
        if relative and self.from_percentile >= self.to_percentile:  # type: ignore[operator]
            raise ValueError(f"{self.key}: from_percentile must be below to_percentile")
        if self.key == "default":
            raise ValueError("default: the file's own window is always the first preset")
        return self


DEFAULT_PRESETS = [
    WindowPreset(key="lung", label="Lung", from_percentile=2, to_percentile=60),
    WindowPreset(key="mediastinum", label="Mediastinum", from_percentile=35, to_percentile=95),
    WindowPreset(key="bone", label="Bone", from_percentile=60, to_percentile=99.8),
]


def check_presets(presets: list[WindowPreset]) -> list[WindowPreset]:
    return check_keys(presets, "window preset", PRESETS_MAX)


def presets_of(stored: list[dict[str, object]] | None) -> list[WindowPreset]:
    if stored is None:
        return list(DEFAULT_PRESETS)
    return [WindowPreset.model_validate(p) for p in stored]

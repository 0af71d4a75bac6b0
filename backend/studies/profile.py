"""The reader profile: questions a coordinator asks each reader once (years of experience,
specialty...), and the check of a reader's answers against them.

A field is one of three kinds: an integer between bounds, a choice among listed options, or a
short free text. Answers are as strict as case answers: an integer field takes a JSON integer
only, a choice one of its options exactly.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.errors import InvalidInputError

PROFILE_FIELDS_MAX = 20
PROFILE_TEXT_MAX = 500
CHOICES_MAX = 30


class ProfileField(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,39}$",
        description="column name in exports: lower-case letters, digits and '_'",
    )
    label: str = Field(min_length=1, max_length=200, description="the question the reader sees")
    kind: Literal["integer", "choice", "text"]
    required: bool = True
    minimum: int | None = Field(default=None, ge=-1_000_000, le=1_000_000)
    maximum: int | None = Field(default=None, ge=-1_000_000, le=1_000_000)
    choices: list[str] = Field(default_factory=list, max_length=CHOICES_MAX)

    @model_validator(mode="after")
    def _consistent(self) -> ProfileField:
        if self.kind == "choice":
            cleaned = [c.strip() for c in self.choices]
            if len(cleaned) < 2 or any(not c or len(c) > 200 for c in cleaned):
                raise ValueError(
                    f"{self.key}: a choice needs 2 or more options of 1-200 characters"
                )
            if len({c.casefold() for c in cleaned}) != len(cleaned):
                raise ValueError(f"{self.key}: an option is listed twice")
            self.choices = cleaned
        elif self.choices:
            raise ValueError(f"{self.key}: only a choice field has choices")
        if self.kind != "integer" and (self.minimum is not None or self.maximum is not None):
            raise ValueError(f"{self.key}: only an integer field has a minimum or maximum")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"{self.key}: minimum {self.minimum} exceeds maximum {self.maximum}")
        return self


ProfileFields = list[ProfileField]


K = TypeVar("K", bound=BaseModel)


def check_keys(items: list[K], what: str, most: int) -> list[K]:
    """A study's list of `what`s (each with a key): at most `most`, with distinct keys."""
    if len(items) > most:
        raise ValueError(f"at most {most} {what}s")
    keys = [getattr(i, "key") for i in items]  # noqa: B009 - every item type has a key
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"{what} key used twice: {', '.join(twice)}")
    return items


def check_fields(fields: list[ProfileField]) -> list[ProfileField]:
    """A study's profile: at most PROFILE_FIELDS_MAX fields with distinct keys."""
    return check_keys(fields, "profile field", PROFILE_FIELDS_MAX)


def parse_fields(stored: list[dict[str, Any]]) -> list[ProfileField]:
    return [ProfileField.model_validate(f) for f in stored]


def _value(field: ProfileField, value: Any) -> int | str:
    name = f"profile.{field.key}"
    if field.kind == "integer":
        # bool is an int subclass in Python: refuse it as the case answers do
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidInputError(f"{name}: give a whole number")
        low, high = field.minimum, field.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"{'' if low is None else low} to {'' if high is None else high}"
            raise InvalidInputError(f"{name}: {value} is outside {bounds.strip()}")
        return value
    if not isinstance(value, str):
        raise InvalidInputError(f"{name}: give text")
    text = value.strip()
    if field.kind == "choice":
        if text not in field.choices:
            raise InvalidInputError(f"{name}: choose one of {', '.join(field.choices)}")
        return text
    if len(text) > PROFILE_TEXT_MAX:
        raise InvalidInputError(f"{name}: at most {PROFILE_TEXT_MAX} characters")
    return text


def checked_answers(fields: list[ProfileField], given: dict[str, Any]) -> dict[str, int | str]:
    """The reader's answers, checked against the fields; an error names the field."""
    known = {f.key for f in fields}
    unknown = sorted(set(given) - known)
    if unknown:
        raise InvalidInputError(f"profile: no field named {', '.join(unknown)}")
    out: dict[str, int | str] = {}
    for field in fields:
        value = given.get(field.key)
        if value is None or value == "":
            if field.required:
                raise InvalidInputError(f"profile.{field.key}: {field.label!r} needs an answer")
            continue
        checked = _value(field, value)
        if checked == "" and field.required:
            raise InvalidInputError(f"profile.{field.key}: {field.label!r} needs an answer")
        if checked != "":
            out[field.key] = checked
    return out

"""What every request model shares: its strings must be storable.

PostgreSQL refuses a NUL character in text and JSON, and a lone surrogate (legal in
a JSON string escape, ``"\\ud800"``) cannot be encoded as UTF-8. Every request model
derives from ``Input``, whose one validator checks every field, free-form JSON and
its keys included, so such input is a 422 naming the field instead of a 500.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationInfo, field_validator

BIGINT_MAX = 2**63 - 1  # the largest id a PostgreSQL bigint column holds
INT_MAX = 2**31 - 1  # the largest a PostgreSQL integer column holds (rule set versions)
Id = Annotated[str, Field(min_length=1, max_length=200)]  # as the id columns hold
Role = Annotated[str, Field(min_length=1, max_length=100)]
LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$"  # a language tag: de, pt-BR
# whitespace spelled out: "\s" differs between the schema's regex dialect and the validator's
NOT_SPACE = r"[^\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


def unstorable(text: str) -> str | None:
    """Why this string cannot be stored, or None when it can."""
    if "\x00" in text:
        return "must not contain a NUL character"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "must not contain a lone surrogate (not valid Unicode)"
    return None


def find_unstorable(value: Any, path: str) -> tuple[str, str] | None:
    """The first unstorable string in a JSON-like value: (its path, why)."""
    if isinstance(value, str):
        why = unstorable(value)
        return (path, why) if why else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = find_unstorable(key, f"{path} (a key)") if isinstance(key, str) else None
            found = found or find_unstorable(item, f"{path}.{key}")
            if found:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = find_unstorable(item, f"{path}.{i}")
            if found:
                return found
    return None


class Input(BaseModel):
    """Base of every request model: unstorable strings are refused by field."""

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, BaseModel) or value is None:
            return value  # a nested Input checked its own fields
        found = find_unstorable(value, info.field_name or "")
        if found:
            where, why = found
            raise ValueError(why if where == info.field_name else f"{where}: {why}")
        return value

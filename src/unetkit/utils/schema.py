"""Validation schemas shared by configs, ``model.json`` and registries.

Every section that a user writes (a run config, a model's constructor arguments, a task's
settings) is a pydantic model derived from :class:`Strict`: an unknown key is an error, and
:func:`validate_section` turns pydantic's errors into one :class:`~unetkit.errors.ConfigError`
whose lines name the key path (``model.depth``) and what is expected, the same way wherever the
values come from (a YAML file, ``key=value`` overrides, a run folder's ``model.json``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from unetkit.errors import ConfigError

S = TypeVar("S", bound=BaseModel)


class Strict(BaseModel):
    """Base of every user-facing schema: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


def error_lines(exc: ValidationError, prefix: Sequence[str] = (), *, unknown_hint: str | None = None) -> list[str]:
    """One line per pydantic error, each naming the dotted key path (``prefix`` put in front);
    ``unknown_hint`` is added to unknown-key lines (e.g. "not a setting of task 'embedding'")."""
    lines = []
    for err in exc.errors():
        parts = [*prefix, *(str(p) for p in err["loc"])]
        loc = ".".join(parts)
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown config key '{loc}'" + (f" ({unknown_hint})" if unknown_hint else ""))
        else:
            got = err.get("input")
            shown = "" if isinstance(got, (dict, list)) and len(str(got)) > 80 else f" (got {got!r})"
            msg = err["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, "):]
            lines.append(f"{loc}: {msg}{shown}" if loc else msg)
    return lines


def raise_config_errors(lines: list[str], *, source: str | None = None) -> None:
    """Raise one :class:`ConfigError` listing ``lines`` (nothing when empty).

    One problem gives one line: ``invalid configuration: model.depth: ...``.
    """
    if not lines:
        return
    where = f" in {source}" if source else ""
    if len(lines) == 1:
        exc = ConfigError(f"invalid configuration{where}: {lines[0]}")
    else:
        exc = ConfigError(f"invalid configuration{where} ({len(lines)} problems): " + "; ".join(lines))
    exc.problems = list(lines)  # type: ignore[attr-defined]  # read back when sections are combined
    raise exc


def validate_section(schema: type[S], raw: Any, prefix: Sequence[str] = (), *, source: str | None = None,
                     unknown_hint: str | None = None) -> S:
    """``schema.model_validate(raw)`` with the errors as one :class:`ConfigError` naming key paths."""
    if not isinstance(raw, dict):
        loc = ".".join(prefix) or "the configuration"
        raise ConfigError(f"{loc} must be a mapping of keys to values, got {type(raw).__name__} {raw!r}"
                          + (f" (in {source})" if source else ""))
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        raise_config_errors(error_lines(exc, prefix, unknown_hint=unknown_hint), source=source)
        raise  # pragma: no cover -- error_lines is never empty for a ValidationError


def validate_named_section(raw: Any, *, kind: str, default: str, schema_of: Callable[[Any], type[S]],
                           base: type[S], prefix: Sequence[str], source: str | None = None) -> S:
    """Validate a section chosen by its ``name`` key (``model``, ``task``) with the schema
    ``schema_of(name)`` returns (``default`` when ``name`` is absent); unknown keys are reported
    as "not a setting of {kind} '{name}'". A non-mapping is refused via ``base``."""
    if not isinstance(raw, dict):
        return validate_section(base, raw, prefix, source=source)  # raises: not a mapping
    raw = {"name": default, **raw}
    return validate_section(schema_of(raw["name"]), raw, prefix, source=source,
                            unknown_hint=f"not a setting of {kind} {raw['name']!r}")

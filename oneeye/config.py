"""Typed settings: strict models, one loader, errors that name the key path.

Each part defines its settings as a :class:`StrictModel` (unknown keys rejected,
bounded fields with descriptions) in its own module and loads them with
:func:`load_settings`: defaults < file (YAML or JSON) < environment
(``PREFIX__KEY__SUB=value``) < explicit overrides (CLI flags). Invalid settings
raise :class:`ConfigError` listing every bad key path, and entry points stop.

:func:`reference_markdown` renders a model as the configuration table the
README embeds, so documentation cannot drift from code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from oneeye.errors import ConfigError
from oneeye.fileio import read_text

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base of every settings model: unknown keys are errors, assignment is validated."""

    # A field's description is the docstring under it (pydantic reads it from the source).
    model_config = ConfigDict(extra="forbid", validate_assignment=True,
                              use_attribute_docstrings=True)


def read_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    text = read_text(p, "settings file", ConfigError)
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if p.suffix == ".json" else "YAML"
        raise ConfigError(f"{p}: not valid {kind}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: settings must be a mapping at the top level")
    return data


def env_overrides(prefix: str, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """``ONEEYE_EDGE__TRACKER__MAX_AGE=5`` → ``{"tracker": {"max_age": "5"}}``.

    Values that parse as JSON (numbers, booleans, lists) are used as such.
    """
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    start = prefix.upper() + "__"
    for key, raw in env.items():
        if not key.startswith(start):
            continue
        path = [p.lower() for p in key[len(start):].split("__") if p]
        if not path:
            continue
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def validate(model: type[M], data: dict[str, Any], *, root: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            path = ".".join([root, *(str(p) for p in err["loc"])] if root else
                            [str(p) for p in err["loc"]])
            lines.append(f"  {path or '(root)'}: {err['msg']}")
        raise ConfigError(
            f"invalid {root or model.__name__} settings:\n" + "\n".join(lines)
        ) from None


def load_settings(
    model: type[M],
    *,
    path: str | Path | None = None,
    env_prefix: str | None = None,
    overrides: dict[str, Any] | None = None,
    root: str = "",
    environ: dict[str, str] | None = None,
) -> M:
    data: dict[str, Any] = {}
    if path is not None:
        data = read_file(path)
    if env_prefix:
        data = deep_merge(data, env_overrides(env_prefix, environ))
    if overrides:
        data = deep_merge(data, {k: v for k, v in overrides.items() if v is not None})
    return validate(model, data, root=root)


def reference_markdown(model: type[BaseModel], *, prefix: str = "") -> str:
    """A Markdown table of every field (nested models flattened with dots)."""
    rows = ["| key | type | default | description |", "|---|---|---|---|"]
    rows.extend(_rows(model, prefix))
    return "\n".join(rows)


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows.extend(_rows(ann, key + "."))
            continue
        typ = getattr(ann, "__name__", None) or str(ann).replace("typing.", "")
        if field.is_required():
            default = "*required*"
        elif field.default_factory is not None:
            try:
                default = f"`{json.dumps(_jsonable(field.default_factory()))}`"  # type: ignore[call-arg]
            except TypeError:
                default = "(computed)"
        else:
            default = f"`{json.dumps(_jsonable(field.default))}`"
        # A validator documents itself by its docstring's first line (its repr is an address).
        bounds = [(getattr(m.func, "__doc__", "") or "").strip().splitlines()[0]
                  if hasattr(m, "func") else f"{m}" for m in field.metadata]
        desc = " ".join((field.description or "").split()).replace("|", "\\|")
        if bounds:
            desc += f" ({', '.join(bounds)})"
        rows.append(f"| `{key}` | {typ.replace('|', 'or')} | {default} | {desc} |")
    return rows


def _portable(path: Path) -> str:
    """Absolute defaults under the checkout are shown relative to it.

    The reference is committed; a default such as ``/work/main/cloud/template.yaml``
    would make the docs check fail in any other clone (CI clones elsewhere).
    """
    if not path.is_absolute():
        return str(path)
    repo = Path(__file__).resolve().parents[1]
    # Not path.resolve(): ../shared may be a symlink (as in CI) that leads elsewhere.
    for base, shown in ((repo, "<repo>/"), (repo.parent, "<repo>/../")):
        if path.is_relative_to(base):
            return shown + str(path.relative_to(base))
    return str(path)


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Path):
        return _portable(value)
    if isinstance(value, tuple):
        return list(value)
    return value

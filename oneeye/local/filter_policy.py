"""SNS subscription filter policies on message attributes (the subset OneEye uses).

Supported per key: a list of exact strings/numbers, ``{"prefix": …}``,
``{"anything-but": value | [values]}``, ``{"exists": bool}``. All keys must
match (AND); within a key's list any entry may match (OR). An attribute of type
``String.Array`` matches if any element matches, as in SNS.
"""

from __future__ import annotations

import json
from typing import Any


def matches(policy: dict[str, Any], attributes: dict[str, Any]) -> bool:
    for key, rules in policy.items():
        attr = attributes.get(key)
        values = _values(attr) if attr is not None else None
        if not isinstance(rules, list):
            rules = [rules]
        if not any(_rule_matches(rule, values) for rule in rules):
            return False
    return True


def _values(attr: Any) -> list[Any]:
    if not isinstance(attr, dict):
        return [attr]
    typ = str(attr.get("Type") or attr.get("DataType") or "String")
    raw = attr.get("Value", attr.get("StringValue"))
    if typ == "String.Array" and isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            return [raw]
        return parsed if isinstance(parsed, list) else [parsed]
    if typ.startswith("Number") and isinstance(raw, str):
        try:
            return [float(raw)]
        except ValueError:
            return [raw]
    return [raw]


def _rule_matches(rule: Any, values: list[Any] | None) -> bool:
    if isinstance(rule, dict):
        if "exists" in rule:
            return bool(rule["exists"]) == (values is not None)
        if values is None:
            return False
        if "prefix" in rule:
            return any(isinstance(v, str) and v.startswith(rule["prefix"]) for v in values)
        if "anything-but" in rule:
            banned = rule["anything-but"]
            banned = banned if isinstance(banned, list) else [banned]
            return all(v not in banned for v in values)
        return False
    if values is None:
        return False
    if isinstance(rule, int | float) and not isinstance(rule, bool):
        return any(isinstance(v, int | float) and float(v) == float(rule) for v in values)
    return any(v == rule for v in values)

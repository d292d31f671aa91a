"""Read what the local stack needs from ``cloud/template.yaml``.

The template is the single source of truth for which topic feeds which Lambda
and which HTTP route calls which handler; reading it here means the local stack
and AWS cannot drift. CloudFormation short tags (``!GetAtt``, ``!Ref``, ``!Sub``…)
are kept as :class:`Tag` values instead of failing ``yaml.safe_load``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from oneeye.errors import ConfigError
from oneeye.fileio import read_text


@dataclass(frozen=True, slots=True)
class Tag:
    """An unresolved CloudFormation intrinsic such as ``!GetAtt Fn.Arn``."""

    name: str
    value: Any


class _Loader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Tag:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return Tag(suffix, value)


_Loader.add_multi_constructor("!", _tag)


@dataclass(frozen=True, slots=True)
class Function:
    """An ``AWS::Serverless::Function``: where its handler is and the environment it gets."""

    logical_id: str
    code_dir: Path
    module_file: Path
    function: str
    environment: dict[str, Any]


@dataclass(frozen=True, slots=True)
class IotRule:
    """An ``AWS::IoT::TopicRule`` whose action invokes ``function_id`` (a logical id)."""

    name: str
    #: The rule's IoT SQL (``SELECT … FROM 'oneeye/+/match'``), evaluated by the local router.
    sql: str
    function_id: str
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class HttpRoute:
    """An ``HttpApi`` event of a function: ``method path`` → ``function_id``."""

    method: str
    #: API Gateway's path template, e.g. ``/api/cases/{case_id}/close``.
    path: str
    function_id: str


@dataclass(frozen=True, slots=True)
class Schedule:
    """A ``Schedule`` event of a function: ``rate(…)`` → invoke ``function_id`` with ``input``."""

    name: str
    function_id: str
    every_s: float
    input: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Template:
    """What the local stack runs of ``cloud/template.yaml``."""

    path: Path
    functions: dict[str, Function]
    rules: list[IotRule]
    routes: list[HttpRoute]
    schedules: list[Schedule] = field(default_factory=list)


_RATE = re.compile(r"^rate\((\d+) (second|minute|hour|day)s?\)$")
_UNIT_S = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float:
    """Seconds between runs of an EventBridge ``rate(N unit)`` expression; ConfigError for
    anything else (``cron(…)`` is not run locally)."""
    m = _RATE.match(expression.strip())
    if not m:
        raise ConfigError(f"unsupported schedule {expression!r} (want rate(N minutes|hours|days))")
    return int(m.group(1)) * _UNIT_S[m.group(2)]


def load(path: str | Path) -> Template:
    p = Path(path)
    text = read_text(p, "the SAM template", ConfigError)
    try:
        doc = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("Resources"), dict):
        raise ConfigError(f"{p}: no Resources section")
    resources: dict[str, Any] = doc["Resources"]
    glob = (doc.get("Globals") or {}).get("Function") or {}
    functions: dict[str, Function] = {}
    rules: list[IotRule] = []
    routes: list[HttpRoute] = []
    schedules: list[Schedule] = []
    for rid, res in resources.items():
        if not isinstance(res, dict):
            continue
        typ = res.get("Type")
        props = res.get("Properties") or {}
        if typ == "AWS::Serverless::Function":
            functions[rid] = _function(p.parent, rid, res, glob)
            for ev_id, ev in (props.get("Events") or {}).items():
                ev_props = ev.get("Properties") or {}
                if ev.get("Type") == "HttpApi":
                    routes.append(HttpRoute(str(ev_props.get("Method", "ANY")).upper(),
                                            str(ev_props.get("Path", "/")), rid))
                elif ev.get("Type") == "IoTRule":
                    rules.append(IotRule(f"{rid}.{ev_id}", _text(ev_props.get("Sql")), rid))
                elif ev.get("Type") == "Schedule":
                    schedules.append(Schedule(
                        f"{rid}.{ev_id}", rid, rate_seconds(_text(ev_props.get("Schedule"))),
                        json.loads(ev_props.get("Input") or "{}")))
        elif typ == "AWS::IoT::TopicRule":
            payload = props.get("TopicRulePayload") or {}
            disabled = bool(payload.get("RuleDisabled", False))
            for action in payload.get("Actions") or []:
                target = _ref_id((action.get("Lambda") or {}).get("FunctionArn"))
                if target:
                    name = props.get("RuleName")
                    rules.append(IotRule(name if isinstance(name, str) else rid,
                                         _text(payload.get("Sql")), target, disabled))
    for rule in rules:
        if rule.function_id not in functions:
            raise ConfigError(f"{p}: IoT rule {rule.name} targets unknown function "
                              f"{rule.function_id}")
    return Template(p, functions, rules, routes, schedules)


def _text(value: Any) -> str:
    """A plain string, or the template text of ``!Sub`` (the SQL uses no variables)."""
    if isinstance(value, dict) and list(value) == ["Fn::Sub"]:
        value = Tag("Sub", value["Fn::Sub"])
    if isinstance(value, Tag) and value.name == "Sub":
        value = value.value if isinstance(value.value, str) else value.value[0]
    if not isinstance(value, str):
        raise ConfigError(f"expected a string (or !Sub), got {value!r}")
    return value


def _ref_id(value: Any) -> str | None:
    """The logical id behind ``!GetAtt X.Arn``, ``!Ref X`` or ``!Sub ${X.Arn}``."""
    if isinstance(value, dict) and len(value) == 1:
        (k, v), = value.items()
        value = Tag(k.replace("Fn::", ""), v)
    if not isinstance(value, Tag):
        return None
    if value.name == "GetAtt":
        target = value.value if isinstance(value.value, str) else value.value[0]
        return str(target).split(".")[0]
    if value.name == "Ref":
        return str(value.value)
    if value.name == "Sub":
        text = value.value if isinstance(value.value, str) else value.value[0]
        m = re.search(r"\$\{([A-Za-z0-9]+)(\.Arn)?\}", str(text))
        return m.group(1) if m else None
    return None


def _function(base: Path, rid: str, res: dict[str, Any], glob: dict[str, Any]) -> Function:
    props = res.get("Properties") or {}
    meta = res.get("Metadata") or {}
    env = dict(((glob.get("Environment") or {}).get("Variables")) or {})
    env.update(((props.get("Environment") or {}).get("Variables")) or {})
    handler = props.get("Handler") or glob.get("Handler")
    code_uri = props.get("CodeUri") or glob.get("CodeUri")
    if props.get("PackageType") == "Image" or (not code_uri and meta.get("Dockerfile")):
        # Container-image functions name their handler in the Dockerfile's CMD.
        context = base / str(meta.get("DockerContext", "."))
        dockerfile = context / str(meta.get("Dockerfile", "Dockerfile"))
        code_dir = dockerfile.parent
        # The plan's convention (cloud/lambdas/<name>/app.py: handler) when no CMD says else.
        handler = handler or _dockerfile_cmd(dockerfile) or "app.handler"
    elif isinstance(code_uri, str):
        code_dir = base / code_uri
        # CodeUri points at build output (cloud/build.py copies cloud/lambdas/<name>/ and
        # oneeye/ there); locally the source of the same function runs.
        source = base / "lambdas" / code_dir.name
        if (source / "app.py").is_file():
            code_dir = source
    else:
        raise ConfigError(f"{base}: function {rid} has no local CodeUri or Dockerfile")
    if not isinstance(handler, str) or "." not in handler:
        raise ConfigError(f"{base}: function {rid}: cannot tell its handler (got {handler!r})")
    module, func = handler.rsplit(".", 1)
    module_file = code_dir / (module.replace(".", "/") + ".py")
    return Function(rid, code_dir.resolve(), module_file.resolve(), func, env)


def _dockerfile_cmd(dockerfile: Path) -> str | None:
    try:
        text = dockerfile.read_text()
    except OSError:
        return None
    m = re.search(r'^CMD\s*\[\s*"([^"]+)"', text, re.MULTILINE)
    return m.group(1) if m else None

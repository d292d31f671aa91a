"""The local IoT rules router: SQL subset, MQTT matching and routing, on the real template."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oneeye.errors import ConfigError
from oneeye.local import rules as rules_mod
from oneeye.local import template as tpl
from oneeye.local.lambdas import Lambdas
from oneeye.local.rules import Condition, RulesRouter, compile_rules, parse_sql, topic_matches
from tests.wait import wait_until

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "cloud" / "template.yaml"


@pytest.fixture(scope="module")
def template() -> tpl.Template:
    return tpl.load(TEMPLATE)


def fired(template: tpl.Template, topic: str, payload: dict[str, object]) -> list[str]:
    return sorted(r.rule.function_id for r in compile_rules(template.rules)
                  if r.query.apply(topic, payload) is not None)


def test_real_template_rules_route_to_the_planned_functions(template: tpl.Template) -> None:
    by_fn = {r.function_id: parse_sql(r.sql) for r in template.rules}
    assert set(by_fn) == {"EnrichMatchFunction", "AmberAlertFunction", "DeviceHealthFunction",
                          "DevicePresenceFunction"}
    assert by_fn["DevicePresenceFunction"].topic_filter == "$aws/events/presence/+/+"
    assert by_fn["DevicePresenceFunction"].topic_fields == ((5, "iot_thing"),)
    assert by_fn["EnrichMatchFunction"].topic_filter == "oneeye/devices/+/matches"
    assert by_fn["EnrichMatchFunction"].conditions == (Condition("watchlist", "=", "customers"),)
    assert by_fn["AmberAlertFunction"].conditions == (Condition("watchlist", "=", "missing"),)
    assert by_fn["DeviceHealthFunction"].topic_filter == "oneeye/devices/+/health"
    assert by_fn["DeviceHealthFunction"].conditions == ()


@pytest.mark.parametrize(("topic", "payload", "expected"), [
    ("oneeye/devices/edge-1/matches", {"watchlist": "customers"}, ["EnrichMatchFunction"]),
    ("oneeye/devices/edge-1/matches", {"watchlist": "missing"}, ["AmberAlertFunction"]),
    ("oneeye/devices/edge-1/health", {"schema": "oneeye.health/1"}, ["DeviceHealthFunction"]),
    ("$aws/events/presence/disconnected/edge-1", {"eventType": "disconnected"},
     ["DevicePresenceFunction"]),
    ("$aws/events/presence/subscribed/edge-1", {}, ["DevicePresenceFunction"]),  # it rejects
    ("oneeye/devices/edge-1/matches", {"watchlist": "vip"}, []),          # no rule for it
    ("oneeye/devices/edge-1/matches", {}, []),                            # field missing
    ("oneeye/devices/edge-1/matches", {"watchlist": ["customers"]}, []),  # wrong type
    ("oneeye/devices/edge-1/x/matches", {"watchlist": "customers"}, []),  # + is one level
    ("oneeye/devices/matches", {"watchlist": "customers"}, []),
    ("other/devices/edge-1/matches", {"watchlist": "customers"}, []),
])
def test_rule_matching_on_the_real_template(template: tpl.Template, topic: str,
                                            payload: dict[str, object],
                                            expected: list[str]) -> None:
    assert fired(template, topic, payload) == expected


def test_template_functions_resolve_to_the_lambda_sources(template: tpl.Template) -> None:
    for fn in template.functions.values():
        assert fn.module_file.is_file(), fn
        assert fn.module_file.parent.parent == REPO / "cloud" / "lambdas"
        assert fn.function == "handler"
    routes = {(r.method, r.path): r.function_id for r in template.routes}
    assert routes[("POST", "/api/uploads")] == "UploadUrlFunction"
    assert routes[("GET", "/api/uploads/{upload_id}")] == "UploadStatusFunction"


def test_loader_tolerates_cloudformation_tags(tmp_path: Path) -> None:
    (tmp_path / "lambdas" / "f").mkdir(parents=True)
    (tmp_path / "lambdas" / "f" / "app.py").write_text("def handler(e, c):\n    return e\n")
    (tmp_path / "t.yaml").write_text("""
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: ../build/f/
      Handler: app.handler
      Environment: {Variables: {A: !Ref Bucket, B: !Sub "${AWS::StackName}-x", C: !GetAtt [X, Arn]}}
  R1:
    Type: AWS::IoT::TopicRule
    Properties:
      RuleName: !Sub "${AWS::StackName}_r1"
      TopicRulePayload:
        Sql: !Sub "SELECT * FROM 'a/#'"
        Actions: [{Lambda: {FunctionArn: !Sub "${Fn.Arn}"}}]
  R2:
    Type: AWS::IoT::TopicRule
    Properties:
      TopicRulePayload:
        Sql: "SELECT * FROM 'b'"
        RuleDisabled: true
        Actions: [{Lambda: {FunctionArn: {"Fn::GetAtt": ["Fn", "Arn"]}}}]
""")
    t = tpl.load(tmp_path / "t.yaml")
    assert t.functions["Fn"].module_file == (tmp_path / "lambdas" / "f" / "app.py").resolve()
    assert [(r.name, r.function_id, r.disabled) for r in t.rules] == [
        ("R1", "Fn", False), ("R2", "Fn", True)]
    assert [r.rule.name for r in compile_rules(t.rules)] == ["R1"]  # disabled rules are off


@pytest.mark.parametrize("bad", ["not yaml: [", "[1, 2]", "Resources: 3"])
def test_loader_rejects_a_broken_template(tmp_path: Path, bad: str) -> None:
    (tmp_path / "t.yaml").write_text(bad)
    with pytest.raises(ConfigError):
        tpl.load(tmp_path / "t.yaml")


def test_loader_rejects_a_rule_targeting_an_unknown_function(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text("""
Resources:
  R:
    Type: AWS::IoT::TopicRule
    Properties:
      TopicRulePayload:
        Sql: "SELECT * FROM 'a'"
        Actions: [{Lambda: {FunctionArn: !GetAtt Ghost.Arn}}]
""")
    with pytest.raises(ConfigError, match="Ghost"):
        tpl.load(tmp_path / "t.yaml")


def test_sql_subset() -> None:
    q = parse_sql("select * from 'a/+/b' where kind = 'x' AND n <> 2 and ok = true;")
    assert q.topic_filter == "a/+/b"
    assert q.apply("a/1/b", {"kind": "x", "n": 3, "ok": True}) is not None
    assert q.apply("a/1/b", {"kind": "x", "n": 2, "ok": True}) is None
    assert q.apply("a/1/b", {"kind": "y", "n": 3, "ok": True}) is None
    nested = parse_sql("SELECT * FROM 'a' WHERE match.watchlist = 'missing'")
    assert nested.apply("a", {"match": {"watchlist": "missing"}}) is not None
    assert nested.apply("a", {"match": "missing"}) is None
    with_topic = parse_sql("SELECT *, topic(3) AS device FROM 'oneeye/devices/+/health'")
    assert with_topic.apply("oneeye/devices/e-7/health", {"x": 1}) == {"x": 1, "device": "e-7"}
    assert parse_sql("SELECT * FROM 'x' WHERE v = 1.5").conditions[0].value == 1.5


@pytest.mark.parametrize("sql", [
    "SELECT watchlist FROM 'a'",                          # projections other than *
    "SELECT * FROM 'a' WHERE x = 'a' OR y = 'b'",         # OR
    "SELECT * FROM 'a' WHERE x LIKE 'a%'",
    "SELECT * FROM 'a' WHERE x > 3",
    "SELECT * FROM a",                                    # unquoted topic
    "SELECT * FROM 'a/#/b'",                              # # not last
    "SELECT * FROM 'a/b+'",                               # + inside a level
    "DELETE FROM 'a'",
    "",
])
def test_unsupported_sql_fails_clearly(sql: str) -> None:
    with pytest.raises(ConfigError):
        parse_sql(sql)


@pytest.mark.parametrize(("flt", "topic", "ok"), [
    ("a/+/c", "a/b/c", True), ("a/+/c", "a/b/d", False), ("a/#", "a", True),
    ("a/#", "a/b/c", True), ("#", "a/b", True), ("#", "$SYS/x", False), ("+/b", "/b", True),
    ("a/b", "a/b/", False), ("a/+", "a/b/c", False),
])
def test_topic_matches(flt: str, topic: str, ok: bool) -> None:
    assert topic_matches(flt, topic) is ok


def _lambdas(tmp_path: Path, body: str) -> tuple[Lambdas, Path]:
    code = tmp_path / "fn"
    code.mkdir()
    (code / "app.py").write_text(body)
    fn = tpl.Function("Fn", code, code / "app.py", "handler", {})
    return Lambdas({"Fn": fn}), code


def test_router_invokes_the_handler_and_survives_bad_payloads(tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    lambdas, _ = _lambdas(tmp_path, "import json\ndef handler(event, context):\n"
                          f"    open({str(out)!r}, 'a').write(json.dumps(event) + '\\n')\n")
    rule = tpl.IotRule("R", "SELECT * FROM 'oneeye/devices/+/matches' WHERE watchlist = 'x'",
                       "Fn")
    router = RulesRouter(compile_rules([rule]), lambdas, dead_letters=tmp_path / "dl.jsonl")
    assert router.route("oneeye/devices/d/matches", b"not json") == 0
    assert router.route("oneeye/devices/d/matches", b"[1, 2]") == 0
    assert router.route("oneeye/devices/d/matches", b"[" * 100_000) == 0  # RecursionError
    assert router.route("oneeye/devices/d/matches", b"\xff\xfe") == 0
    assert router.route("oneeye/devices/d/matches", b'{"watchlist": "y"}') == 0
    assert router.route("oneeye/devices/d/matches", b'{"watchlist": "x", "n": 1}') == 1
    router.close()
    assert [json.loads(line) for line in out.read_text().splitlines()] == [
        {"watchlist": "x", "n": 1}]
    assert router.invoked == 1 and not (tmp_path / "dl.jsonl").exists()


def test_failing_handler_is_retried_then_dead_lettered(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules_mod, "RETRY_DELAY_S", 0.01)
    counter = tmp_path / "n"
    lambdas, _ = _lambdas(tmp_path, "def handler(event, context):\n"
                          f"    open({str(counter)!r}, 'a').write('x')\n"
                          "    raise RuntimeError('SNS unavailable')\n")
    router = RulesRouter(compile_rules([tpl.IotRule("R", "SELECT * FROM 't'", "Fn")]), lambdas,
                         dead_letters=tmp_path / "dl.jsonl")
    router.route("t", b'{"event_id": "e1"}')
    wait_until(lambda: router.failed, 30, "the event to be dead-lettered")
    router.close()
    assert counter.read_text() == "xxx"  # first try + 2 retries, like async Lambda
    dead = [json.loads(line) for line in (tmp_path / "dl.jsonl").read_text().splitlines()]
    assert dead == [{"rule": "R", "function": "Fn", "topic": "t",
                     "error": "RuntimeError: SNS unavailable", "event": {"event_id": "e1"}}]

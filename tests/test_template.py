"""cloud/template.yaml: cfn-lint clean (with the SAM transform), and what the local stack reads."""

from __future__ import annotations

import subprocess
from pathlib import Path

from oneeye.local import rules
from oneeye.local import template as ltpl

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "cloud" / "template.yaml"
HANDLERS = {"enrich_match", "amber_alert", "device_health", "device_presence",
            "gallery_indexer", "upload_url",
            "upload_status", "cases"}


def test_cfn_lint_is_clean() -> None:
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "cfn-lint"), str(TEMPLATE)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cfn_lint_expands_sam(tmp_path: Path) -> None:
    """Guards the check above: without the SAM translator cfn-lint silently skips functions."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(TEMPLATE.read_text().replace("Type: SQS\n", "Type: SQSX\n", 1))
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "cfn-lint"), str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "SQSX" in proc.stdout


def _local() -> ltpl.Template:
    return ltpl.load(TEMPLATE)


def _name(t: ltpl.Template, function_id: str) -> str:
    return t.functions[function_id].code_dir.name


def test_rules_are_what_the_local_stack_routes() -> None:
    t = _local()
    compiled = rules.compile_rules(t.rules)
    got = {(c.query.topic_filter, tuple((k.field, k.value) for k in c.query.conditions),
            _name(t, c.rule.function_id)) for c in compiled}
    assert got == {
        ("oneeye/devices/+/matches", (("watchlist", "customers"),), "enrich_match"),
        ("oneeye/devices/+/matches", (("watchlist", "missing"),), "amber_alert"),
        ("oneeye/devices/+/health", (), "device_health"),
        ("$aws/events/presence/+/+", (), "device_presence"),
    }
    raw = ltpl.yaml.load(TEMPLATE.read_text(), Loader=ltpl._Loader)
    for res in raw["Resources"].values():
        if res["Type"] == "AWS::IoT::TopicRule":
            payload = res["Properties"]["TopicRulePayload"]
            assert payload["AwsIotSqlVersion"] == "2016-03-23"
            assert "Sqs" in payload["ErrorAction"]


def test_rule_matching() -> None:
    t = _local()
    compiled = rules.compile_rules(t.rules)

    def routed(topic: str, msg: dict[str, str]) -> list[str]:
        return [_name(t, c.rule.function_id) for c in compiled
                if c.query.apply(topic, msg) is not None]

    assert routed("oneeye/devices/cam1/matches", {"watchlist": "customers"}) == ["enrich_match"]
    assert routed("oneeye/devices/cam1/matches", {"watchlist": "missing"}) == ["amber_alert"]
    assert routed("oneeye/devices/cam1/matches", {"watchlist": "vip"}) == []
    assert routed("oneeye/devices/cam1/health", {}) == ["device_health"]
    assert routed("$aws/events/presence/connected/cam1", {}) == ["device_presence"]
    assert t.schedules[0].input == {"action": "sweep"} and t.schedules[0].every_s == 60
    assert routed("oneeye/devices/a/b/matches", {"watchlist": "customers"}) == []


def test_functions_handlers_and_environment() -> None:
    t = _local()
    fns = {f.code_dir.name: f for f in t.functions.values()}
    assert set(fns) == HANDLERS
    for name, fn in fns.items():
        assert fn.module_file == REPO / "cloud" / "lambdas" / name / "app.py", name
        assert fn.module_file.is_file() and fn.function == "handler"
    raw = ltpl.yaml.load(TEMPLATE.read_text(), Loader=ltpl._Loader)["Resources"]
    for lid, res in raw.items():
        if res["Type"] == "AWS::Serverless::Function":
            assert res["Properties"]["Tags"]["oneeye:function"] == _name(t, lid)
    props = raw["GalleryIndexerFunction"]["Properties"]
    assert props["PackageType"] == "Image"
    assert props["ReservedConcurrentExecutions"] == 1
    assert props["Events"]["Uploads"]["Type"] == "SQS"
    assert props["Events"]["Uploads"]["Properties"]["BatchSize"] == 1
    assert {"DESK_TOPIC_ARN", "IDEMPOTENCY_TABLE", "CUSTOMER_API_URL"} <= \
        set(fns["enrich_match"].environment)
    assert {"ALERTS_TOPIC_ARN", "CASES_TABLE", "ALERT_COOLDOWN_S", "SNAPSHOT_URL_TTL_S",
            "ONEEYE_BUCKET"} <= set(fns["amber_alert"].environment)
    assert "GALLERY_NOTIFY" in fns["gallery_indexer"].environment
    assert "INDEXER_QUEUE_URL" in fns["cases"].environment


def test_http_routes() -> None:
    t = _local()
    routes = {(r.method, r.path, _name(t, r.function_id)) for r in t.routes}
    assert routes == {
        ("POST", "/api/uploads", "upload_url"),
        ("GET", "/api/uploads/{upload_id}", "upload_status"),
        ("GET", "/api/cases", "cases"),
        ("POST", "/api/cases/{case_id}/close", "cases"),
    }


def test_resources_helper_matches_template_settings(moto_server: str) -> None:
    """ensure_resources (moto, local stack) makes what the template declares."""
    from oneeye import aws
    from oneeye.cloud.dal.resources import ensure_resources

    env = ensure_resources("tpl-check")
    assert ensure_resources("tpl-check") == env  # idempotent
    ddb, s3 = aws.client("dynamodb"), aws.client("s3")
    ttl = ddb.describe_time_to_live(TableName=env["IDEMPOTENCY_TABLE"])
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"
    for table, key in (("IDEMPOTENCY_TABLE", "event_id"), ("CASES_TABLE", "case_id"),
                       ("AGENCIES_TABLE", "token_sha256")):
        desc = ddb.describe_table(TableName=env[table])["Table"]
        assert desc["KeySchema"] == [{"AttributeName": key, "KeyType": "HASH"}]
    notif = s3.get_bucket_notification_configuration(Bucket=env["ONEEYE_BUCKET"])
    rule = notif["QueueConfigurations"][0]
    assert rule["Filter"]["Key"]["FilterRules"][0]["Value"] == "uploads/"
    block = s3.get_public_access_block(Bucket=env["ONEEYE_BUCKET"])
    assert all(block["PublicAccessBlockConfiguration"].values())
    assert s3.get_bucket_cors(Bucket=env["ONEEYE_BUCKET"])["CORSRules"][0]["AllowedMethods"] \
        == ["POST", "GET"]


def test_security_properties() -> None:
    res = ltpl.yaml.load(TEMPLATE.read_text(), Loader=ltpl._Loader)["Resources"]
    bucket = res["DataBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    notif = bucket["NotificationConfiguration"]["QueueConfigurations"][0]
    assert notif["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "uploads/"}]
    assert "IndexerQueuePolicy" in str(res["DataBucket"]["DependsOn"])
    for table in ("IdempotencyTable", "CasesTable", "AgenciesTable"):
        props = res[table]["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST" and props["SSESpecification"]
    assert res["IdempotencyTable"]["Properties"]["TimeToLiveSpecification"] == \
        {"AttributeName": "expires_at", "Enabled": True}
    doc = str(res["DevicePolicy"]["Properties"]["PolicyDocument"])
    assert "topic/oneeye/devices/${!iot:Connection.Thing.ThingName}/*" in doc
    assert "topicfilter/oneeye/gallery/updated" in doc
    assert "iot:*" not in doc
    sub = res["DeskDashboardSubscription"]["Properties"]
    assert sub["FilterPolicyScope"] == "MessageAttributes"
    # No secret value anywhere: only the secret's name is a parameter.
    text = TEMPLATE.read_text().lower()
    assert "api_key:" not in text and "password" not in text


def _actions(res: dict[str, object], function_id: str) -> dict[str, str]:
    """action → resource (as text) of a function's inline policy statements."""
    props = res[function_id]["Properties"]  # type: ignore[index]
    out: dict[str, str] = {}
    for policy in props["Policies"]:
        for st in policy["Statement"]:
            if getattr(st, "name", None) == "If":   # !If [condition, statement, NoValue]
                st = st.value[1]
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            for action in actions:
                where = (str(st["Resource"]) if "Resource" in st
                         else f"NOT {st['NotResource']}")
                out[action] = out.get(action, "") + where + str(st.get("Condition", ""))
    return out


def test_trust_boundaries_in_the_template() -> None:
    """Issue 13 on AWS: the rules pass the publishing thing, the event functions may read
    only the registry, the indexer may refuse (delete, audit) and sign, nothing more."""
    tpl = _local()
    # the thing's name comes from the topic: level 3 of oneeye/devices/<thing>/…, level 5
    # (the client id, which the device policy makes the thing name) of the lifecycle topics
    assert {r.name: r.sql.split(" FROM ")[0] for r in tpl.rules} == {
        r.name: "SELECT *, topic(5) AS iot_thing" if "presence" in r.sql
        else "SELECT *, topic(3) AS iot_thing" for r in tpl.rules}
    res = ltpl.yaml.load(TEMPLATE.read_text(), Loader=ltpl._Loader)["Resources"]
    for fn in ("EnrichMatchFunction", "AmberAlertFunction", "DeviceHealthFunction",
               "DevicePresenceFunction"):
        acts = _actions(res, fn)
        assert "thing/*" in acts["iot:DescribeThing"]
        assert not any(a.startswith("iot:") and a != "iot:DescribeThing" for a in acts)
    # Issue 20 §3: the case contact is messaged directly — SMS to phone numbers only (no
    # other topic, no endpoint), email only from the one configured SES identity.
    amber = _actions(res, "AmberAlertFunction")
    assert "NOT Tag(name='Sub', value='arn:${AWS::Partition}:sns:*:*:*')" in amber["sns:Publish"]
    assert "identity/${AlertEmailFrom}" in amber["ses:SendEmail"]
    assert "ses:FromAddress" in amber["ses:SendEmail"]
    assert "CasesTable" in amber["dynamodb:UpdateItem"]
    indexer = _actions(res, "GalleryIndexerFunction")
    assert "/uploads/*" in indexer["s3:DeleteObject"]
    assert "/status/*" in indexer["s3:GetObject"] and "/audit/*" in indexer["s3:PutObject"]
    assert "AgenciesTable" in indexer["dynamodb:GetItem"]
    assert "GallerySigningKeySecretName" in indexer["secretsmanager:GetSecretValue"]
    env = res["GalleryIndexerFunction"]["Properties"]["Environment"]["Variables"]
    assert {"AGENCIES_TABLE", "GALLERY_SIGNING_KEY_SECRET"} <= set(env)

"""The Lambdas' settings: one typed model per function, checked at cold start, built once."""

from __future__ import annotations

import logging

import pytest

from oneeye.cloud import settings as cs
from oneeye.errors import ConfigError
from oneeye.local import template as tpl
from tests.cloud_support import CustomerApiStub, load_app, match
from tests.paths import REPO

pytestmark = pytest.mark.timeout(120)

ENRICH = {"IDEMPOTENCY_TABLE": "idem", "DESK_TOPIC_ARN": "arn:aws:sns:us-east-1:1:desk"}


def test_every_function_has_a_settings_model_and_the_template_sets_what_it_needs() -> None:
    functions = {f.code_dir.name: f for f in tpl.load(REPO / "cloud" / "template.yaml")
                 .functions.values()}
    assert set(cs.FUNCTIONS) == set(functions)
    for name, model in cs.FUNCTIONS.items():
        declared = {f.alias for f in model.model_fields.values()}
        required = {f.alias for f in model.model_fields.values() if f.is_required()}
        given = set(functions[name].environment)
        assert required <= given, f"{name}: the template does not set {required - given}"
        # A variable the code does not read is a typo or a leftover.
        assert given <= declared, f"{name}: the template sets unknown {given - declared}"


def test_a_bad_value_is_a_config_error_naming_the_function_and_variable() -> None:
    env = {**ENRICH, "CUSTOMER_API_TIMEOUT_S": "soon", "CUSTOMER_API_ATTEMPTS": "0"}
    with pytest.raises(ConfigError) as err:
        cs.EnrichSettings.from_env(env, root="enrich_match")
    text = str(err.value)
    assert "enrich_match.CUSTOMER_API_TIMEOUT_S" in text
    assert "enrich_match.CUSTOMER_API_ATTEMPTS" in text


def test_a_missing_variable_is_named() -> None:
    with pytest.raises(ConfigError, match=r"amber_alert\.ALERTS_TOPIC_ARN: Field required"):
        cs.AmberSettings.from_env({**ENRICH, "ONEEYE_BUCKET": "bkt", "CASES_TABLE": "cases"},
                                  root="amber_alert")


def test_empty_means_unset_and_defaults_are_documented_values() -> None:
    s = cs.EnrichSettings.from_env({**ENRICH, "CUSTOMER_API_URL": "", "CUSTOMER_API_KEY": ""})
    assert s.customer_api_url is None and s.customer_api_key is None
    assert (s.customer_api_timeout_s, s.customer_api_attempts) == (2.0, 3)
    u = cs.UploadUrlSettings.from_env({**ENRICH, "ONEEYE_BUCKET": "bkt", "CASES_TABLE": "cases",
                                       "AGENCIES_TABLE": "agencies", "UPLOAD_URL_TTL_S": "120"})
    assert (u.upload_url_ttl_s, u.upload_rate_per_min, u.upload_max_bytes) == \
        (120, 30, 10 * 1024 * 1024)


def test_misconfigured_event_function_logs_once_and_raises_so_the_event_is_retried(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    for key, value in ENRICH.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CUSTOMER_API_ATTEMPTS", "many")
    with caplog.at_level(logging.ERROR, logger="oneeye.cloud.common"):
        app = load_app("enrich_match")
    assert "enrich_match.CUSTOMER_API_ATTEMPTS" in caplog.text
    with pytest.raises(ConfigError, match="CUSTOMER_API_ATTEMPTS"):
        app.handler(match(), None)


@pytest.mark.usefixtures("desk_device")
def test_enrich_builds_its_customer_client_once_per_container(
        cloud_env: dict[str, str], customer_api: CustomerApiStub) -> None:
    customer_api.customers["C-1042"] = {"id": "C-1042", "name": "Ada Lovelace"}
    app = load_app("enrich_match")
    deps = app.DEPS.get()
    assert deps.lookup is not None
    assert app.handler(match(), None)["degraded"] is False
    assert app.handler(match(), None)["degraded"] is False
    assert app.DEPS.get() is deps  # the same client served both invocations
    assert [key for _, key in customer_api.requests] == [customer_api.api_key] * 2


@pytest.mark.usefixtures("desk_device")
def test_enrich_without_customer_api_says_so_once_not_per_event(
        cloud_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("CUSTOMER_API_URL", raising=False)
    with caplog.at_level(logging.INFO):
        app = load_app("enrich_match")
        outs = [app.handler(match(), None) for _ in range(3)]
    assert all(o["status"] == "published" and o["degraded"] for o in outs)
    about_url = [r for r in caplog.records if "CUSTOMER_API_URL" in r.getMessage()]
    assert len(about_url) == 1 and about_url[0].levelno == logging.WARNING
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

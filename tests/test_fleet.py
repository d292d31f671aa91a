"""A fleet: the deployment ``./deploy.sh aws`` sends (validated against the real
create-deployment request shape) and each device's own site and cameras."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import yaml
from botocore.validate import validate_parameters

from oneeye.config import deep_merge
from oneeye.edge.device.fleet import device_config, shadow_update, thing_attributes
from oneeye.edge.device.greengrass import settings_from_config
from oneeye.edge.settings import DEVICE_SHADOW, DeviceConfig
from oneeye.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
RECIPE = yaml.safe_load((REPO / "edge" / "recipe.yaml").read_text())
DEFAULTS = RECIPE["ComponentConfiguration"]["DefaultConfiguration"]


def _deploy_sh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(REPO / "deploy.sh"), *args], capture_output=True, text=True,
                          timeout=120, cwd=REPO)


@pytest.fixture(scope="module")
def deployment() -> dict[str, Any]:
    proc = _deploy_sh("aws", "--stack", "oneeye-prod", "--region", "eu-west-1",
                      "--thing-group", "branches", "--customer-api-url", "https://bank.example",
                      "--component-version", "1.2.3", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "create-deployment" in proc.stderr and "--cli-input-json" in proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def test_the_deployment_is_a_valid_create_deployment_request(deployment: dict[str, Any]) -> None:
    shape = botocore.session.get_session().get_service_model(
        "greengrassv2").operation_model("CreateDeployment").input_shape
    validate_parameters(deployment, shape)           # raises ParamValidationError otherwise
    assert deployment["targetArn"] == "arn:aws:iot:eu-west-1:ACCOUNT:thinggroup/branches"
    assert deployment["components"]["com.oneeye.edge"]["componentVersion"] == "1.2.3"
    for spec in deployment["components"].values():
        assert isinstance(spec["configurationUpdate"]["merge"], str)   # a JSON string


def test_the_stack_outputs_are_merged_into_a_valid_device_configuration(
        deployment: dict[str, Any]) -> None:
    merge = json.loads(deployment["components"]["com.oneeye.edge"]["configurationUpdate"]
                       ["merge"])
    s = settings_from_config(deep_merge(DEFAULTS, merge), thing_name="branch-17")
    assert s.gallery_sync.enabled and s.gallery_sync.bucket == "STACK-OUTPUT-BucketName"
    assert "CHANGE-ME" not in json.dumps(merge)
    # deploy.sh installs the signing key pair: the fleet verifies with its public half
    assert s.gallery_sync.public_key and not s.gallery_sync.allow_unsigned
    assert "PRIVATE KEY" not in json.dumps(merge)


def test_the_recipe_alone_trusts_no_unsigned_gallery() -> None:
    """No ``public_key: null`` that silently trusts: without deploy.sh's key, refuse."""
    s = settings_from_config(DEFAULTS, thing_name="branch-17")
    assert s.gallery_sync.public_key is None and s.gallery_sync.allow_unsigned is False
    assert "public_key" not in DEFAULTS["gallery_sync"]


def test_shadow_manager_syncs_exactly_the_device_config_shadow(
        deployment: dict[str, Any]) -> None:
    spec = deployment["components"]["aws.greengrass.ShadowManager"]
    sync = json.loads(spec["configurationUpdate"]["merge"])["synchronize"]
    assert sync == {"coreThing": {"classic": False, "namedShadows": [DEVICE_SHADOW]},
                    "direction": "cloudToDevice"}
    assert RECIPE["ComponentDependencies"]["aws.greengrass.ShadowManager"][
        "DependencyType"] == "HARD"


def test_device_config_writes_the_same_site_and_cameras_to_shadow_and_attributes() -> None:
    device = device_config("branch-17", ["door=rtsp://10.0.0.5/door", "lobby=rtsp://10.0.0.6/l"])
    current = {"state": {"desired": {"site_id": "branch-17", "cameras": {
        "door": {"source": "rtsp://old"}, "till": {"source": "rtsp://10.0.0.9/t"}}}}}
    payload = shadow_update(device, current)
    desired = payload["state"]["desired"]
    assert desired["cameras"]["till"] is None          # a removed camera is deleted
    live = {k: v for k, v in desired["cameras"].items() if v is not None}
    assert DeviceConfig.model_validate({**desired, "cameras": live}) == device
    attrs = thing_attributes(device)
    assert attrs == {"attributes": {"site_id": "branch-17", "cameras": "door,lobby"},
                     "merge": True}


def test_device_config_refuses_bad_values_with_their_path() -> None:
    with pytest.raises(ConfigError, match=re.escape("device.cameras.door/1")):
        device_config("branch-17", ["door/1=rtsp://x"])
    with pytest.raises(ConfigError, match="CAMERA_ID=SOURCE"):
        device_config("branch-17", ["rtsp://x"])


def test_deploy_sh_device_config_dry_run_names_the_shadow_and_the_thing() -> None:
    proc = _deploy_sh("device-config", "--thing", "branch-17-core", "--region", "eu-west-1",
                      "--site", "branch-17", "--camera", "door=rtsp://10.0.0.5/door",
                      "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "update-thing-shadow --thing-name branch-17-core --shadow-name oneeye-config" in \
        proc.stderr
    assert "update-thing --thing-name branch-17-core" in proc.stderr
    assert '"site_id": "branch-17"' in proc.stderr and '"cameras": "door"' in proc.stderr

"""The Greengrass component: recipe, access control, placeholders, configuration, build."""

from __future__ import annotations

import importlib.util
import inspect
import json
import re
import threading
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from awsiot.greengrasscoreipc import model
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

from oneeye.edge.device.greengrass import (
    ConfigFollower,
    close_streams,
    read_settings,
    settings_from_config,
    shadow_topic,
)
from oneeye.errors import ConfigError

EDGE = Path(__file__).resolve().parents[1] / "edge"
RECIPE = yaml.safe_load((EDGE / "recipe.yaml").read_text())
DEFAULTS = RECIPE["ComponentConfiguration"]["DefaultConfiguration"]
KNOWN_VARIABLES = re.compile(
    r"^\{(iot:thingName|work:path|artifacts:path|artifacts:decompressedPath|kernel:rootPath"
    r"|configuration:/[^}]+)\}$")


def test_required_fields() -> None:
    assert RECIPE["RecipeFormatVersion"] == "2020-01-25"
    assert RECIPE["ComponentName"] == "com.oneeye.edge"
    assert re.match(r"^\d+\.\d+\.\d+$", RECIPE["ComponentVersion"])
    for key in ("ComponentDescription", "ComponentPublisher", "Manifests"):
        assert RECIPE[key]


def test_manifests_for_linux_x86_64_and_aarch64() -> None:
    platforms = {(m["Platform"]["os"], m["Platform"]["architecture"]) for m in RECIPE["Manifests"]}
    assert platforms == {("linux", "amd64"), ("linux", "aarch64")}
    for m in RECIPE["Manifests"]:
        (artifact,) = m["Artifacts"]
        assert artifact["URI"].endswith("/oneeye-edge.zip") and artifact["Unarchive"] == "ZIP"
        life = m["Lifecycle"]
        install = life["Install"]["Script"]
        assert "venv" in install and "requirements.txt" in install
        assert life["Run"]["Script"].endswith("oneeye-edge/main.py")
        assert life["Run"]["RequiresPrivilege"] is False


def test_access_control_is_exactly_the_devices_own_topics_and_shadow() -> None:
    acl = DEFAULTS["accessControl"]
    grants = sorted((service, tuple(p["operations"]), tuple(p["resources"]))
                    for service, policies in acl.items() for p in policies.values())
    shadow = "$aws/things/{iot:thingName}/shadow/name/oneeye-config"
    assert grants == [
        ("aws.greengrass.ShadowManager", ("aws.greengrass#GetThingShadow",), (shadow,)),
        ("aws.greengrass.ipc.mqttproxy", ("aws.greengrass#PublishToIoTCore",),
         ("oneeye/devices/{iot:thingName}/*",)),
        ("aws.greengrass.ipc.mqttproxy", ("aws.greengrass#SubscribeToIoTCore",),
         ("oneeye/gallery/updated",)),
        ("aws.greengrass.ipc.pubsub", ("aws.greengrass#SubscribeToTopic",),
         (shadow + "/update/accepted",)),
    ]
    for _, operations, resources in grants:
        assert "*" not in operations and "#" not in "".join(resources)
    assert shadow_topic("t-1") == shadow.replace("{iot:thingName}", "t-1")


def test_every_placeholder_is_a_known_recipe_variable() -> None:
    text = (EDGE / "recipe.yaml").read_text()
    found = set(re.findall(r"\{[^{}\s]+\}", text))
    assert found, "the recipe uses recipe variables"
    unknown = [p for p in found if not KNOWN_VARIABLES.match(p)]
    assert unknown == []
    assert "{iot:thingName}" in found


def test_default_configuration_validates_against_edge_settings() -> None:
    s = settings_from_config(DEFAULTS, thing_name="branch-17-cam")
    assert s.device_id == "branch-17-cam"
    assert s.publish.url == "ipc"
    # What the device publishes is inside what the access control grants.
    grant = "oneeye/devices/{iot:thingName}/*".replace("{iot:thingName}", "branch-17-cam")
    for kind in ("matches", "health"):
        assert re.fullmatch(grant.replace("*", "[^/]+"), s.topic(kind))
    assert s.gallery_sync.update_topic == "oneeye/gallery/updated"


@pytest.mark.parametrize("change, path", [
    ({"publish": {"url": "ipc", "urll": "x"}}, "configuration.publish.urll"),
    ({"cooldown_s": -1}, "configuration.cooldown_s"),
    ({"colldown_s": 5}, "configuration.colldown_s"),
    ({"cameras": {"door": {"source": "0", "detection": {"upsampel": 1}}}},
     "configuration.cameras.door.detection.upsampel"),
    ({"cameras": {"door": {"sauce": "rtsp://x"}}}, "configuration.cameras.door.sauce"),
])
def test_bad_configuration_names_the_key_path(change: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(path)):
        settings_from_config({**DEFAULTS, **change}, thing_name="t")


def test_thing_name_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_IOT_THING_NAME", "gg-core-9")
    assert settings_from_config(DEFAULTS).device_id == "gg-core-9"
    monkeypatch.delenv("AWS_IOT_THING_NAME")
    with pytest.raises(ConfigError, match="AWS_IOT_THING_NAME"):
        settings_from_config(DEFAULTS)


class StandInConfigIPC:
    """get_configuration / subscribe_to_configuration_update / get_thing_shadow /
    subscribe_to_topic with the real signatures (ShadowManager's local shadow service)."""

    def __init__(self, config: dict[str, Any], shadow: dict[str, Any] | None = None) -> None:
        self.config = config
        self.shadow = shadow
        self.handler: Any = None
        self.topics: dict[str, Any] = {}

    def get_thing_shadow(self, *, thing_name=None, shadow_name=None):  # type: ignore[no-untyped-def]
        if self.shadow is None or shadow_name != "oneeye-config":
            raise model.ResourceNotFoundError(message=f"no shadow {shadow_name}")
        return model.GetThingShadowResponse(payload=json.dumps(self.shadow).encode())

    def subscribe_to_topic(self, *, topic=None, receive_mode=None, stream_handler=None,  # type: ignore[no-untyped-def]
                           on_stream_event=None, on_stream_error=None, on_stream_closed=None):
        self.topics[topic] = on_stream_event
        return model.SubscribeToTopicResponse(), None

    def get_configuration(self, *, component_name=None, key_path=None):  # type: ignore[no-untyped-def]
        return model.GetConfigurationResponse(component_name="com.oneeye.edge",
                                              value=json.loads(json.dumps(self.config)))

    def subscribe_to_configuration_update(self, *, component_name=None, key_path=None,  # type: ignore[no-untyped-def]
                                          stream_handler=None, on_stream_event=None,
                                          on_stream_error=None, on_stream_closed=None):
        self.handler = on_stream_event
        return model.SubscribeToConfigurationUpdateResponse(), None


@pytest.mark.parametrize("method", ["get_configuration", "subscribe_to_configuration_update",
                                    "get_thing_shadow", "subscribe_to_topic"])
def test_standin_matches_real_client(method: str) -> None:
    real = inspect.signature(getattr(GreengrassCoreIPCClientV2, method))
    ours = inspect.signature(getattr(StandInConfigIPC, method))
    assert [(n, p.kind, p.default) for n, p in real.parameters.items()] == \
        [(n, p.kind, p.default) for n, p in ours.parameters.items()]


def test_configuration_updates_are_followed_and_bad_ones_refused() -> None:
    ipc = StandInConfigIPC(DEFAULTS)
    current = read_settings(ipc, "t-1")
    stop = threading.Event()
    follower = ConfigFollower(ipc, current, stop, thing_name="t-1")
    follower.start()
    event = model.ConfigurationUpdateEvents(
        configuration_update_event=model.ConfigurationUpdateEvent(
            component_name="com.oneeye.edge", key_path=["cooldown_s"]))
    ipc.config = {**DEFAULTS, "cooldown_s": "not a number"}
    ipc.handler(event)
    assert follower.rejected == 1 and not stop.is_set()  # the running config is kept
    ipc.config = {**DEFAULTS, "cooldown_s": 120}
    ipc.handler(event)
    assert stop.is_set()
    new = follower.take()
    assert new is not None and new.cooldown_s == 120 and follower.current == new


class Stream:
    """An IPC stream operation's ``close``; a stream that already died raises on close."""

    def __init__(self, dead: bool = False) -> None:
        self.dead = dead
        self.closed = False

    def close(self) -> None:
        if self.dead:
            raise ConnectionError("stream already gone")
        self.closed = True


def test_closing_streams_closes_the_rest_after_one_fails() -> None:
    first, dead, last = Stream(), Stream(dead=True), Stream()
    operations: list[Any] = [first, dead, last]
    close_streams(operations)
    assert first.closed and last.closed
    assert operations == []  # a second close has nothing left to close


def _desired(site: str, cameras: dict[str, Any]) -> dict[str, Any]:
    return {"state": {"desired": {"site_id": site, "cameras": cameras}},
            "version": 3, "timestamp": 1767225600}


def test_each_device_takes_its_site_and_cameras_from_its_shadow() -> None:
    no_shadow = read_settings(StandInConfigIPC(DEFAULTS), "branch-17")
    assert (no_shadow.site_id, list(no_shadow.per_camera())) == ("site-1", ["cam-1"])
    ipc = StandInConfigIPC(DEFAULTS, _desired("branch-17", {
        "door": {"source": "rtsp://10.0.0.5/door"},
        "lobby": {"source": "rtsp://10.0.0.6/lobby", "detection": {"upsample": 2}}}))
    s = read_settings(ipc, "branch-17")
    assert s.site_id == "branch-17" and s.device_id == "branch-17"
    per = s.per_camera()
    assert list(per) == ["door", "lobby"]      # the shadow's map replaces the default cam-1
    assert per["lobby"].detection.upsample == 2
    assert s.gallery_sync.enabled               # everything else from the configuration


def test_a_shadow_change_reaches_the_running_component_and_a_bad_one_is_refused() -> None:
    ipc = StandInConfigIPC(DEFAULTS, _desired("branch-17", {"door": {"source": "0"}}))
    stop = threading.Event()
    follower = ConfigFollower(ipc, read_settings(ipc, "branch-17"), stop, thing_name="branch-17")
    follower.start()
    on_shadow = ipc.topics[shadow_topic("branch-17", "/update/accepted")]
    ipc.shadow = _desired("branch-17", {"door": {"source": "0", "stall_s": 0}})
    on_shadow(model.SubscriptionResponseMessage())
    assert follower.rejected == 1 and not stop.is_set()   # invalid: the running one is kept
    ipc.shadow = _desired("branch-17", {"door": {"source": "0"}, "till": {"source": "1"}})
    on_shadow(model.SubscriptionResponseMessage())
    assert stop.is_set()                                   # valid: the pipeline restarts
    new = follower.take()
    assert new is not None and list(new.per_camera()) == ["door", "till"]


def test_a_shadow_error_names_its_key_path() -> None:
    ipc = StandInConfigIPC(DEFAULTS, _desired("branch 17", {"door": {"source": "0"}}))
    with pytest.raises(ConfigError, match=re.escape("shadow.desired.site_id")):
        read_settings(ipc, "t-1")
    ipc.shadow = {"state": {"desired": {"site_id": "b", "cameras": {}, "colour": 1}}}
    with pytest.raises(ConfigError, match=re.escape("shadow.desired.colour")):
        read_settings(ipc, "t-1")


def test_gdk_config_matches_recipe_and_gdk_schema() -> None:
    cfg = json.loads((EDGE / "gdk-config.json").read_text())
    assert set(cfg) == {"component", "gdk_version"}
    ((name, spec),) = cfg["component"].items()
    assert name == RECIPE["ComponentName"]
    assert spec["version"] == RECIPE["ComponentVersion"]
    assert spec["build"]["build_system"] == "custom"
    assert "build.py" in spec["build"]["custom_build_command"]
    assert {"bucket", "region", } <= set(spec["publish"]) and spec["author"]


def test_build_bundles_oneeye_into_the_artifact(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("edge_build", EDGE / "build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    target = build.build(tmp_path / "greengrass-build")
    assert target == tmp_path / "greengrass-build/artifacts/com.oneeye.edge/1.0.0/oneeye-edge.zip"
    names = set(zipfile.ZipFile(target).namelist())
    assert {"main.py", "requirements.txt", "oneeye/gallery/rule.py", "oneeye/edge/comms/uplink.py",
            "oneeye/edge/device/runner.py"} <= names
    assert not any("__pycache__" in n or n.startswith("tests/") for n in names)
    assert (tmp_path / "greengrass-build/recipes/recipe.yaml").exists()
    assert not (EDGE / "oneeye").exists()  # no copy of the package kept in the repo
    # what the device does not run stays out of it
    assert not any(n.startswith(("oneeye/cloud/", "oneeye/local/", "oneeye/commands/"))
                   for n in names)
    assert not names & {"oneeye/synth.py", "oneeye/cli.py"}


def test_the_artifact_runs_its_entry_point_from_the_zip_alone(tmp_path: Path) -> None:
    """Unpacked, the artifact imports ``main.py`` and everything it wires, from the zip's
    own ``oneeye`` (not this checkout's): nothing the device needs was left out."""
    import subprocess
    import sys

    spec = importlib.util.spec_from_file_location("edge_build", EDGE / "build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    unpacked = tmp_path / "oneeye-edge"
    zipfile.ZipFile(build.build(tmp_path / "gg")).extractall(unpacked)
    # The checkout's editable install would answer any module the zip lacks, so the probe
    # runs without site processing (-S: no .pth finders) and sees only the zip and the
    # third-party packages (what the recipe's pip install provides on the device).
    site = next(p for p in sys.path if p.endswith("site-packages"))
    probe = (
        "import sys, pathlib, importlib\n"
        f"sys.path[:0] = [{str(unpacked)!r}]; sys.path.append({site!r})\n"
        "import main, oneeye\n"
        f"assert pathlib.Path(oneeye.__file__).is_relative_to({str(unpacked)!r})\n"
        "for name in ('oneeye.edge.device.greengrass', 'oneeye.edge.comms.publishers',"
        " 'oneeye.edge.device.runner', 'oneeye.edge.comms.uplink', 'oneeye.logs',"
        " 'awsiot.greengrasscoreipc.clientv2'):\n"
        "    importlib.import_module(name)\n"
        "print(callable(main.main))\n"
    )
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", probe], cwd=tmp_path, text=True,
                          capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "True", proc.stderr


def test_the_artifact_requirements_are_the_edge_extra_of_pyproject(tmp_path: Path) -> None:
    import tomllib

    project = tomllib.loads((EDGE.parent / "pyproject.toml").read_text())["project"]
    edge = project["optional-dependencies"]["edge"]
    assert set(edge) <= set(project["dependencies"]), "edge extra and dependencies disagree"
    spec = importlib.util.spec_from_file_location("edge_build", EDGE / "build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    with zipfile.ZipFile(build.build(tmp_path / "gg")) as zf:
        assert zf.read("requirements.txt").decode().split() == edge


def test_recipe_decides_with_the_benchmarked_rule() -> None:
    from oneeye.gallery import DEFAULT_RULES, DecisionRule, Gallery, Matcher
    from oneeye.types import WATCHLISTS

    s = settings_from_config(DEFAULTS, thing_name="branch-17-cam")
    # Galleries as the indexer builds them (the default rule), under the recipe's overrides.
    matcher = Matcher([Gallery.empty(w) for w in WATCHLISTS])
    effective = matcher.rules({str(k): v for k, v in s.thresholds.items()})
    assert effective == DEFAULT_RULES
    # The rule bench/accuracy.py selects on lfw_dev and the README reports.
    assert set(DEFAULT_RULES.values()) == {DecisionRule(max_distance=0.525, min_margin=0.085)}

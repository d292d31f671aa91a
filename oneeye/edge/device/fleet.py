"""A fleet of edge devices: the deployment ``./deploy.sh aws`` sends and each device's own config.

One Greengrass deployment to a thing group gives every device the same component
configuration. :func:`deployment_document` builds it as the ``greengrassv2
create-deployment`` request: the stack's outputs (the gallery bucket) merged into
``com.oneeye.edge``'s configuration, and ``aws.greengrass.ShadowManager`` told to sync
each device's named shadow ``oneeye-config`` from the cloud. Each ``configurationUpdate
.merge`` is a JSON *string*, as the API wants it.

What differs per device, its site and cameras (:class:`DeviceConfig`), goes in that
shadow (:func:`shadow_update`, read by the component over IPC, see
:mod:`oneeye.edge.device.greengrass`) and, for the cloud's trust registry, in the thing's
attributes ``site_id`` and ``cameras`` (:func:`thing_attributes`); ``./deploy.sh
device-config`` writes both from the same values so they cannot disagree.

    python -m oneeye.edge.device.fleet deployment --outputs outputs.json --target-arn ARN \\
        --name NAME --component com.oneeye.edge --version 1.0.0 --shadow-manager-version 2.3.0
    python -m oneeye.edge.device.fleet device --site branch-17 --camera door=rtsp://… \\
        [--current shadow.json] --shadow-out s.json --attributes-out a.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from oneeye.config import validate
from oneeye.edge.settings import DEVICE_SHADOW, DeviceConfig
from oneeye.errors import ConfigError, OneEyeError

SHADOW_MANAGER = "aws.greengrass.ShadowManager"
#: The stack output holding the bucket the galleries are published to (cloud/template.yaml).
BUCKET_OUTPUT = "BucketName"


def stack_outputs(described: Any) -> dict[str, str]:
    """``aws cloudformation describe-stacks --query Stacks[0].Outputs`` → {key: value}."""
    if not isinstance(described, list):
        raise ConfigError("stack outputs: expected the list describe-stacks returns")
    return {str(o["OutputKey"]): str(o["OutputValue"]) for o in described
            if isinstance(o, dict) and "OutputKey" in o and "OutputValue" in o}


def component_merge(outputs: Mapping[str, str], public_key: str) -> dict[str, Any]:
    """The fleet-wide part of ``com.oneeye.edge``'s configuration that comes from the stack:
    the gallery bucket, and the indexer's public key that every gallery must verify with."""
    bucket = outputs.get(BUCKET_OUTPUT)
    if not bucket:
        raise ConfigError(f"stack outputs: no {BUCKET_OUTPUT} (is the stack deployed?)")
    from oneeye import signing
    signing.public_key(public_key)  # ConfigError: not a base64 Ed25519 public key
    return {"gallery_sync": {"enabled": True, "bucket": bucket, "public_key": public_key}}


def shadow_manager_merge() -> dict[str, Any]:
    """ShadowManager ≥ 2.2: sync the core device's ``oneeye-config`` shadow cloud → device."""
    return {"synchronize": {"coreThing": {"classic": False, "namedShadows": [DEVICE_SHADOW]},
                            "direction": "cloudToDevice"}}


def deployment_document(*, target_arn: str, name: str, component: str, version: str,
                        shadow_manager_version: str, outputs: Mapping[str, str],
                        public_key: str) -> dict[str, Any]:
    """The ``greengrassv2 create-deployment`` request (``--cli-input-json``)."""
    return {
        "targetArn": target_arn,
        "deploymentName": name,
        "components": {
            component: {"componentVersion": version, "configurationUpdate": {
                "merge": json.dumps(component_merge(outputs, public_key))}},
            SHADOW_MANAGER: {"componentVersion": shadow_manager_version,
                             "configurationUpdate": {"merge": json.dumps(shadow_manager_merge())}},
        },
    }


def device_config(site_id: str, cameras: Sequence[str]) -> DeviceConfig:
    """``site_id`` and ``ID=SOURCE`` strings as a validated :class:`DeviceConfig`."""
    cams: dict[str, Any] = {}
    for spec in cameras:
        camera, sep, source = spec.partition("=")
        if not sep or not source:
            raise ConfigError(f"--camera {spec!r}: expected CAMERA_ID=SOURCE")
        cams[camera] = {"source": source}
    return validate(DeviceConfig, {"site_id": site_id, "cameras": cams}, root="device")


def shadow_update(device: DeviceConfig, current: Mapping[str, Any] | None = None
                  ) -> dict[str, Any]:
    """The ``update-thing-shadow`` payload that makes ``device`` the desired state.

    A shadow update merges objects key by key, so cameras of the ``current`` shadow
    document that ``device`` no longer has are set to null (which deletes them).
    """
    desired: dict[str, Any] = {
        "site_id": device.site_id,
        "cameras": {k: v.model_dump(exclude_unset=True) for k, v in device.cameras.items()}}
    old = ((current or {}).get("state") or {}).get("desired") or {}
    for gone in set(old.get("cameras") or {}) - set(device.cameras):
        desired["cameras"][gone] = None
    return {"state": {"desired": desired}}


def thing_attributes(device: DeviceConfig) -> dict[str, Any]:
    """``aws iot update-thing --attribute-payload``: what the cloud's trust registry reads
    (``site_id``; ``cameras`` as comma-separated ids — attribute values are strings)."""
    return {"attributes": {"site_id": device.site_id, "cameras": ",".join(device.cameras)},
            "merge": True}


def _read_json(path: str | None) -> Any:
    if path is None:
        return None
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    return json.loads(text) if text.strip() else None


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m oneeye.edge.device.fleet", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("deployment", help="print the create-deployment request")
    d.add_argument("--outputs", required=True, help="describe-stacks Outputs JSON file or -")
    for flag in ("--target-arn", "--name", "--component", "--version",
                 "--shadow-manager-version", "--gallery-public-key"):
        d.add_argument(flag, required=True)
    v = sub.add_parser("device", help="write the shadow update and thing attributes")
    v.add_argument("--site", required=True)
    v.add_argument("--camera", action="append", required=True, metavar="ID=SOURCE")
    v.add_argument("--current", help="the device's current shadow document (JSON file)")
    v.add_argument("--shadow-out", required=True)
    v.add_argument("--attributes-out", required=True)
    args = ap.parse_args(argv)
    try:
        if args.command == "deployment":
            doc = deployment_document(
                target_arn=args.target_arn, name=args.name, component=args.component,
                version=args.version, shadow_manager_version=args.shadow_manager_version,
                outputs=stack_outputs(_read_json(args.outputs)),
                public_key=args.gallery_public_key)
            print(json.dumps(doc, indent=2))
            return 0
        device = device_config(args.site, args.camera)
        Path(args.shadow_out).write_text(json.dumps(shadow_update(device,
                                                                  _read_json(args.current))))
        Path(args.attributes_out).write_text(json.dumps(thing_attributes(device)))
        return 0
    except (OneEyeError, OSError, json.JSONDecodeError) as exc:
        print(f"fleet: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

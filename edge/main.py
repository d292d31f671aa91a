"""Greengrass v2 entry point of com.oneeye.edge (thin: read config, wire, run).

The Nucleus starts this with the component's venv (see recipe.yaml). It reads and
validates the configuration over IPC with this device's site and cameras from its
named shadow ``oneeye-config`` (ShadowManager), follows changes to either, publishes
through Greengrass IPC (``publish.url: ipc``) and runs every camera until Greengrass
stops the component (SIGTERM).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bundled oneeye/ package

from oneeye.errors import OneEyeError

log = logging.getLogger("oneeye.edge.main")


def main() -> int:
    from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

    from oneeye.edge.comms.publishers import make_publisher
    from oneeye.edge.comms.uplink import Uplink
    from oneeye.edge.device.greengrass import ConfigFollower, read_settings
    from oneeye.edge.device.runner import load_holder, run_edge
    from oneeye.logs import configure

    configure("INFO")
    ipc = GreengrassCoreIPCClientV2()  # the one IPC client of the process
    try:
        settings = read_settings(ipc)
    except OneEyeError as exc:
        log.error("%s", exc)
        return 2
    stop = threading.Event()
    shutdown = threading.Event()

    def on_term(*_: Any) -> None:
        shutdown.set()
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    follower = ConfigFollower(ipc, settings, stop)
    follower.start()

    def uplink_factory(s: Any, vitals: Any) -> Uplink:
        return Uplink(s, vitals, publisher=make_publisher(s, ipc_client=ipc))

    try:
        while True:
            holder = load_holder(settings)
            run_edge(settings, holder, stop_event=stop, uplink_factory=uplink_factory)
            new = follower.take()
            if shutdown.is_set() or new is None:
                break
            settings = new
            stop.clear()
    except OneEyeError as exc:
        log.error("%s", exc)
        return 2
    finally:
        follower.close()
        ipc.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fan-out bench: one dashboard process, N authenticated Socket.IO clients, R events/s via /sns.

    .venv/bin/python bench/fanout.py --clients 500 --rate 50 --seconds 10

Starts ``oneeye dashboard run`` on a free loopback port with a throwaway state
directory, logs in a few users (many clients share a session, like tabs),
connects the clients, posts pre-signed SNS notifications (signed by a key the
bench generates and the dashboard pins) at a fixed rate, and prints deliveries
expected / received / lost and delivery latency (POST sent → event received by
the client) p50 / p95 / max. Target: 0 lost, p95 ≤ 250 ms.

The clients speak Engine.IO 4 / Socket.IO 5 directly over ``websockets`` (one
asyncio loop, a few lines of protocol): 500 full python-socketio clients in one
process cost more CPU than the server under test, and this box has 2 cores.
A baseline run with one client goes first, in the same process, so the figure
for N clients can be read against it. Everything stops by itself: the server
is terminated and the state directory removed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from websockets.asyncio.client import connect

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.dashboard_helpers import Signer, csrf_from, desk_event  # noqa: E402

PASSWORD = "bench-password-123"


def start_server(state: Path, port: int, signer: Signer, users: int,
                 message_queue: str | None, async_mode: str) -> subprocess.Popen[bytes]:
    from dashboard.auth import hash_password
    from dashboard.settings import DashboardSettings
    from dashboard.store import open_store

    settings = DashboardSettings(
        var_dir=state, allowed_topics=[signer.topic], session_cookie_secure=False,
        pinned_certs={signer.cert_url: signer.write_cert(state)}, login_attempts=1000,
        message_queue=message_queue)
    config = state / "dashboard.json"
    config.write_text(settings.model_dump_json())
    store = open_store(settings.resolved_database_url())
    digest = hash_password(PASSWORD)
    for i in range(users):
        store.users.create(f"teller{i}", digest, ["branch-1"])
    store.close()
    log = (state / "server.log").open("wb")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "oneeye.cli", "--log-level", "WARNING",
                             "dashboard", "run", "--port", str(port), "--config", str(config),
                             "--async-mode", async_mode],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"dashboard exited:\n{(state / 'server.log').read_text()}")
        try:
            requests.get(url + "/healthz", timeout=1)
            return proc
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit("dashboard did not start")


def login(url: str, user: str) -> str:
    s = requests.Session()
    token = csrf_from(s.get(url + "/login", timeout=10).text)
    r = s.post(url + "/login", data={"username": user, "password": PASSWORD,
                                     "csrf_token": token}, timeout=30, allow_redirects=False)
    if r.status_code != 302:
        raise SystemExit(f"login of {user} failed: {r.status_code}")
    return "; ".join(f"{k}={v}" for k, v in s.cookies.items())


class Run:
    def __init__(self) -> None:
        self.arrivals: list[tuple[str, float]] = []
        self.duplicates = 0
        self.errors: list[str] = []


async def client(ws_url: str, cookie: str, run: Run, connected: list[int],
                 compression: str | None) -> None:
    seen: set[str] = set()
    try:
        async with connect(ws_url, additional_headers={"Cookie": cookie}, max_size=2**22,
                           open_timeout=60, ping_interval=None,
                           compression=compression) as ws:
            opening = await ws.recv()
            if not str(opening).startswith("0"):
                raise RuntimeError(f"unexpected open packet {opening!r}")
            await ws.send("40")
            while True:
                msg = str(await ws.recv())
                if msg == "2":
                    await ws.send("3")
                elif msg.startswith("40"):
                    break
                elif msg.startswith("44"):
                    raise RuntimeError(f"connection refused: {msg}")
            connected[0] += 1
            async for raw in ws:
                now = time.time()
                msg = str(raw)
                if msg == "2":
                    await ws.send("3")
                elif msg.startswith("42"):
                    name, record = json.loads(msg[2:])[:2]
                    if name != "desk_event":
                        continue
                    eid = record["event_id"]
                    if eid in seen:
                        run.duplicates += 1
                        continue
                    seen.add(eid)
                    run.arrivals.append((eid, now))
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a bench reports failures, it does not die on the first
        run.errors.append(f"{type(exc).__name__}: {exc}")


def poster(url: str, signer: Signer, rate: float, seconds: float, out: Any) -> None:
    """Runs in its own process so the receivers' event loop cannot delay the POSTs.

    SNS delivers concurrently, so POSTs go out on schedule from a small pool rather
    than one after another (a slow response must not hold back the next event).
    """
    bodies = []
    for i in range(int(rate * seconds)):
        event = desk_event(name=f"Customer {i}", person_id=f"C-{i}")
        bodies.append((event.event_id, json.dumps(signer.notification(event.to_json()))))
    headers = {"x-amz-sns-message-type": "Notification", "Content-Type": "text/plain"}
    sessions = threading.local()
    sent: dict[str, float] = {}
    status: dict[int, int] = {}
    post_s: list[float] = []
    lock = threading.Lock()

    def post(eid: str, body: str) -> None:
        if not hasattr(sessions, "s"):
            sessions.s = requests.Session()
        sent[eid] = time.time()
        t = time.perf_counter()
        code = sessions.s.post(url + "/sns", data=body, headers=headers, timeout=30).status_code
        with lock:
            post_s.append(time.perf_counter() - t)
            status[code] = status.get(code, 0) + 1

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        for i, (eid, body) in enumerate(bodies):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(post, eid, body)
        behind = time.monotonic() - start - len(bodies) / rate
    out.send({"sent": sent, "status": status, "post_s": post_s, "behind_s": behind})


def cpu_s(pid: int) -> float:
    """User+system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(url: str, signer: Signer, cookies: list[str], clients: int, rate: float,
                  seconds: float, drain_s: float, server_pid: int,
                  compression: str | None) -> dict[str, Any]:
    run = Run()
    ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    connected = [0]
    tasks = []
    t0 = time.monotonic()
    for i in range(clients):
        tasks.append(asyncio.create_task(
            client(ws_url, cookies[i % len(cookies)], run, connected, compression)))
        if i % 25 == 24:
            await asyncio.sleep(0.05)  # stay under the listen backlog
    while connected[0] + len(run.errors) < clients and time.monotonic() - t0 < 120:
        await asyncio.sleep(0.1)
    connect_s = time.monotonic() - t0
    receive_end, send_end = multiprocessing.Pipe(duplex=False)
    proc = multiprocessing.Process(target=poster, args=(url, signer, rate, seconds, send_end))
    cpu0, own0, wall0 = cpu_s(server_pid), time.process_time(), time.monotonic()
    proc.start()
    while not receive_end.poll():
        await asyncio.sleep(0.1)
    posted = receive_end.recv()
    proc.join()
    expected = posted["status"].get(200, 0) * connected[0]
    deadline = time.monotonic() + drain_s
    while len(run.arrivals) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    wall = time.monotonic() - wall0
    server_cpu, bench_cpu = cpu_s(server_pid) - cpu0, time.process_time() - own0
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    sent = posted["sent"]
    lat = sorted(t - sent[e] for e, t in run.arrivals if e in sent)
    received = len(run.arrivals)

    def pct(values: list[float], p: float) -> float | None:
        return round(values[min(len(values) - 1, int(p * len(values)))] * 1000, 1) \
            if values else None
    post_s = sorted(posted["post_s"])
    return {
        "clients": clients, "connected": connected[0], "connect_s": round(connect_s, 1),
        "rate": rate, "seconds": seconds, "posted": posted["status"],
        "poster_behind_s": round(posted["behind_s"], 2), "expected": expected,
        "received": received, "lost": expected - received, "duplicates": run.duplicates,
        "p50_ms": pct(lat, 0.50), "p95_ms": pct(lat, 0.95), "p99_ms": pct(lat, 0.99),
        "max_ms": round(lat[-1] * 1000, 1) if lat else None,
        "post_p50_ms": pct(post_s, 0.5), "post_p95_ms": pct(post_s, 0.95),
        "wall_s": round(wall, 1), "server_cpu_s": round(server_cpu, 2),
        "server_cpu_us_per_delivery": round(1e6 * server_cpu / max(received, 1), 1),
        "server_cpu_pct": round(100 * server_cpu / wall), "bench_cpu_pct":
        round(100 * bench_cpu / wall), "load_avg_1m": round(os.getloadavg()[0], 1),
        "client_errors": run.errors[:5], "client_error_count": len(run.errors),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=500)
    ap.add_argument("--rate", type=float, default=50.0, help="events per second")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--users", type=int, default=10, help="distinct logged-in users")
    ap.add_argument("--drain", type=float, default=15.0, help="max wait for stragglers (s)")
    ap.add_argument("--message-queue", default=None, help="e.g. redis://127.0.0.1:6379/0")
    ap.add_argument("--async-mode", choices=["threading", "gevent"], default="gevent")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--no-compression", action="store_true",
                    help="clients do not offer permessage-deflate (browsers always do; "
                    "the dashboard declines it unless websocket_compression is on)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    signer = Signer()
    with tempfile.TemporaryDirectory(prefix="oneeye-fanout-") as tmp:
        state = Path(tmp)
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = start_server(state, port, signer, args.users, args.message_queue,
                            args.async_mode)
        url = f"http://127.0.0.1:{port}"
        try:
            cookies = [login(url, f"teller{i}") for i in range(args.users)]
            results = {}
            if not args.no_baseline:
                results["baseline"] = asyncio.run(measure(
                    url, signer, cookies, 1, args.rate, min(args.seconds, 3), args.drain, proc.pid,
                    None if args.no_compression else "deflate"))
                print("baseline:", json.dumps(results["baseline"]), flush=True)
            results["fanout"] = asyncio.run(measure(
                url, signer, cookies, args.clients, args.rate, args.seconds, args.drain, proc.pid,
                    None if args.no_compression else "deflate"))
            print("fanout:  ", json.dumps(results["fanout"]), flush=True)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    f = results["fanout"]
    print(f"async mode {args.async_mode}; server CPU {f['server_cpu_s']} s "
          f"({f['server_cpu_us_per_delivery']} µs/delivery, {f['server_cpu_pct']}%), bench CPU "
          f"{f['bench_cpu_pct']}%, load average {f['load_avg_1m']:.1f} on {os.cpu_count()} cores")
    verdict = "PASS" if f["lost"] == 0 and (f["p95_ms"] or 1e9) <= 250 else "MISS"
    print(f"\n{f['connected']}/{f['clients']} clients, {f['expected']} deliveries expected, "
          f"{f['received']} received, {f['lost']} lost; p50 {f['p50_ms']} ms, "
          f"p95 {f['p95_ms']} ms, max {f['max_ms']} ms  → {verdict} (target 0 lost, p95 ≤ 250 ms)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

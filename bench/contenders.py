"""The processes a benchmark run starts: the nginx backend, seaway, HAProxy and nginx as
a proxy, each with an equivalent configuration on its own loopback address.

Every contender gets one worker (seaway: one process; HAProxy: ``nbthread 1``; nginx:
``worker_processes 1``), the same single upstream (the backend nginx), keep-alive to
that upstream at L7, and the same timeouts. Every process is started through a
``ProcessGroup``, which stops them all, also when the run fails or is interrupted.
"""

from __future__ import annotations

import http.client
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from seaway.testing.processes import free_port, stop_process

# Loopback addresses, one per role, so that the contenders never share a port space
# and every packet stays on the host.
BACKEND_HOST = "127.0.91.1"
SEAWAY_POOL = "127.0.92.0/24"
SEAWAY_L4_HOST = "127.0.92.10"
SEAWAY_L7_HOST = "127.0.92.20"
HAPROXY_HOST = "127.0.93.1"
NGINX_HOST = "127.0.94.1"
FLOOR_HOST = "127.0.95.1"

SMALL_PATH = "/small.txt"
LARGE_PATH = "/large.bin"
# About the size of a small JSON API answer.
SMALL_BODY = b'{"status":"ok","service":"bench","items":[1,2,3,4,5,6,7,8,9,10]}\n' * 2
LARGE_BYTES = 64 * 1024 * 1024
# Every idle connection, client keep-alive and upstream timeout is at least this long,
# so that the idle-connection scenario is not cut short by a proxy's timer.
IDLE_SECONDS = 120
STARTUP_SECONDS = 20.0


class ContenderFailed(Exception):
    """A process did not start or did not answer; the message holds its log's tail."""


def nofile_limit() -> int:
    """Raise this process's open-file soft limit to the hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return int(resource.getrlimit(resource.RLIMIT_NOFILE)[0])


@dataclass
class ProcessGroup:
    """Every process the benchmark started; ``stop_all`` ends them (SIGTERM, then KILL)."""

    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(
        self, args: list[str], log: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        stop_process(proc, wait_seconds=10)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs)):
            self.stop(proc)


@dataclass(frozen=True)
class Endpoints:
    """Where a contender listens: HTTP/1.1 (L7), TCP (L4) and h2c (None: not offered)."""

    l7: tuple[str, int]
    l4: tuple[str, int]
    h2: tuple[str, int] | None


@dataclass
class Running:
    """A started contender: its main process (children included in readings)."""

    name: str
    proc: subprocess.Popen[bytes]
    endpoints: Endpoints
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


@dataclass(frozen=True)
class Backend:
    """The common upstream: one nginx serving a small and a large file."""

    host: str
    port: int
    running: Running


def http_status(host: str, port: int, path: str = SMALL_PATH, timeout: float = 2.0) -> int:
    """The status of one GET on a new connection (0 when it fails)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": "bench.local"})
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def _wait_ready(running: Running, checks: list[tuple[str, int]]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    pending = list(checks)
    while pending:
        if running.proc.poll() is not None:
            raise ContenderFailed(
                f"{running.name} exited {running.proc.returncode}: {_tail(running.log)}"
            )
        if time.monotonic() > deadline:
            raise ContenderFailed(
                f"{running.name} did not answer on {pending}: {_tail(running.log)}"
            )
        if http_status(*pending[0]) == 200:
            pending.pop(0)
        else:
            time.sleep(0.1)


def _tail(log: Path, size: int = 1500) -> str:
    try:
        return log.read_text(errors="replace")[-size:]
    except OSError:
        return "(no log)"


# -- the backend ---------------------------------------------------------------------


def start_backend(
    group: ProcessGroup, nginx: str, workdir: Path, *, workers: int, nofile: int
) -> Backend:
    """The backend nginx: static files, long keep-alive, no access log."""
    root = workdir / "www"
    root.mkdir(parents=True, exist_ok=True)
    (root / SMALL_PATH.lstrip("/")).write_bytes(SMALL_BODY)
    large = root / LARGE_PATH.lstrip("/")
    with large.open("wb") as f:  # sparse: no disk space, read from the page cache
        f.truncate(LARGE_BYTES)
    port = free_port(BACKEND_HOST)
    connections = max(1024, nofile - 100)
    conf = workdir / "backend-nginx.conf"
    conf.write_text(
        f"""
worker_processes {workers};
daemon off;
master_process on;
user root;
pid {workdir}/backend-nginx.pid;
worker_rlimit_nofile {nofile};
events {{ worker_connections {connections}; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  open_file_cache max=64 inactive=600s;
  keepalive_timeout {IDLE_SECONDS}s;
  keepalive_requests 100000000;
  client_header_timeout {IDLE_SECONDS}s;
  client_body_temp_path {workdir}/backend-body;
  default_type application/octet-stream;
  types {{ text/plain txt; }}
  server {{
    listen {BACKEND_HOST}:{port} backlog=4096;
    root {root};
  }}
}}
"""
    )
    log = workdir / "backend-nginx.log"
    proc = group.start([nginx, "-c", str(conf), "-e", str(log), "-p", str(workdir)], log)
    running = Running(
        "backend", proc, Endpoints((BACKEND_HOST, port), (BACKEND_HOST, port), None), log
    )
    _wait_ready(running, [(BACKEND_HOST, port)])
    return Backend(BACKEND_HOST, port, running)


def direct(backend: Backend) -> Running:
    """The backend itself as a reference contender (no proxy in between)."""
    return backend.running


# -- seaway --------------------------------------------------------------------------


def seaway_manifests(backend: Backend, l4_port: int, l7_port: int) -> list[dict[str, object]]:
    """A SeawayConfig, a LoadBalancer Service (L4) and an Ingress (L7), one endpoint."""
    return [
        {
            "apiVersion": "seaway.io/v1alpha1",
            "kind": "SeawayConfig",
            "metadata": {"name": "seaway"},
            "spec": {
                "loopbackPool": SEAWAY_POOL,
                "ingress": {"address": SEAWAY_L7_HOST, "port": l7_port, "serveWithoutClass": True},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "annotations": {"metallb.io/loadBalancerIPs": SEAWAY_L4_HOST},
            },
            "spec": {
                "type": "LoadBalancer",
                "ports": [
                    {"name": "http", "protocol": "TCP", "port": l4_port, "targetPort": "http"}
                ],
            },
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "web-1",
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": "web"},
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "protocol": "TCP", "port": backend.port}],
            "endpoints": [{"addresses": [backend.host], "conditions": {"ready": True}}],
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": l4_port}}}},
        },
    ]


def start_seaway(
    group: ProcessGroup, backend: Backend, workdir: Path, *, source: Path | None = None
) -> Running:
    """``seaway run`` with the manifests above (one process, uvloop). ``source``: run the
    seaway of another checkout instead (its ``src`` first on the path), as the
    "baseline" contender, so that a change is measured against the code before it in
    the same run."""
    l4_port = free_port(SEAWAY_L4_HOST)
    l7_port = free_port(SEAWAY_L7_HOST)
    manifest = workdir / "seaway.yaml"
    manifest.write_text(
        yaml.safe_dump_all(seaway_manifests(backend, l4_port, l7_port), sort_keys=False)
    )
    log = workdir / "seaway.log"
    args = [sys.executable, "-m", "seaway", "run", "-f", str(manifest)]
    # SEAWAY_BENCH_WORKERS=N: `seaway run --workers N` (docs/BENCHMARKS.md, "Workers");
    # worker I's admin API is on port + I, so several take ephemeral ports (port 0).
    workers = os.environ.get("SEAWAY_BENCH_WORKERS", "1")
    admin = f"127.0.0.1:{free_port() if workers == '1' else 0}"
    args += ["--admin", admin, "--state-file", str(workdir / "addresses.json")]
    args += ["--shutdown-delay", "0", "--workers", workers]
    env = None
    if source is not None:
        env = {**os.environ, "PYTHONPATH": str(source / "src")}
    proc = group.start(args, log, env=env)
    l7 = (SEAWAY_L7_HOST, l7_port)
    # seaway serves HTTP/2 (when it does) on the same listener as HTTP/1.1.
    name = "seaway" if source is None else "baseline"
    running = Running(name, proc, Endpoints(l7, (SEAWAY_L4_HOST, l4_port), l7), log)
    _wait_ready(running, [l7, running.endpoints.l4])
    return running


# -- HAProxy -------------------------------------------------------------------------


def start_haproxy(
    group: ProcessGroup, haproxy: str, backend: Backend, workdir: Path, *, nofile: int
) -> Running:
    """HAProxy: ``mode http`` with ``http-reuse always``, ``mode tcp``, one thread."""
    l7 = (HAPROXY_HOST, free_port(HAPROXY_HOST))
    l4 = (HAPROXY_HOST, free_port(HAPROXY_HOST))
    h2 = (HAPROXY_HOST, free_port(HAPROXY_HOST))
    server = f"{backend.host}:{backend.port}"
    # HAProxy reserves two descriptors per connection (client and server side) and
    # refuses to start when the open-file limit cannot hold them.
    maxconn = max(1000, nofile // 2 - 100)
    conf = workdir / "haproxy.cfg"
    conf.write_text(
        f"""
global
  nbthread {os.environ.get("HAPROXY_BENCH_THREADS", "1")}
  maxconn {maxconn}

defaults
  mode http
  timeout connect 2s
  timeout client {IDLE_SECONDS}s
  timeout server {IDLE_SECONDS}s
  timeout http-request 10s
  timeout http-keep-alive {IDLE_SECONDS}s

frontend l7
  bind {l7[0]}:{l7[1]}
  bind {h2[0]}:{h2[1]} proto h2
  option forwardfor
  default_backend upstream

backend upstream
  http-reuse always
  server backend {server}

frontend l4
  mode tcp
  bind {l4[0]}:{l4[1]}
  default_backend upstream-tcp

backend upstream-tcp
  mode tcp
  server backend {server}
"""
    )
    log = workdir / "haproxy.log"
    proc = group.start([haproxy, "-f", str(conf), "-db"], log)
    running = Running("haproxy", proc, Endpoints(l7, l4, h2), log)
    _wait_ready(running, [l7, l4])
    return running


# -- the Python floor ---------------------------------------------------------------


def start_floor(
    group: ProcessGroup, backend: Backend, workdir: Path, *, parse: bool = False
) -> Running:
    """``bench.floor_proxy``: a bare uvloop byte relay (no h2c), the least a Python
    proxy costs per connection and per request; with ``parse`` it also reads every
    HTTP head with httptools (see that module)."""
    name = "floor-parse" if parse else "floor"
    l7 = (FLOOR_HOST, free_port(FLOOR_HOST))
    l4 = (FLOOR_HOST, free_port(FLOOR_HOST))
    log = workdir / f"{name}.log"
    args = [sys.executable, "-m", "bench.floor_proxy", *(["--parse"] if parse else [])]
    args += [FLOOR_HOST, str(l7[1]), str(l4[1])]
    proc = group.start([*args, backend.host, str(backend.port)], log)
    running = Running(name, proc, Endpoints(l7, l4, None), log)
    _wait_ready(running, [l7, l4])
    return running


# -- nginx as a proxy ----------------------------------------------------------------


def start_nginx_proxy(
    group: ProcessGroup,
    nginx: str,
    stream_module: Path,
    backend: Backend,
    workdir: Path,
    *,
    nofile: int,
) -> Running:
    """nginx: ``proxy_pass`` with an upstream ``keepalive`` pool, ``stream`` for L4."""
    l7 = (NGINX_HOST, free_port(NGINX_HOST))
    l4 = (NGINX_HOST, free_port(NGINX_HOST))
    h2 = (NGINX_HOST, free_port(NGINX_HOST))
    server = f"{backend.host}:{backend.port}"
    location = """
    location / {
      proxy_pass http://upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }"""
    conf = workdir / "nginx-proxy.conf"
    conf.write_text(
        f"""
load_module {stream_module};
worker_processes 1;
daemon off;
master_process on;
user root;
pid {workdir}/nginx-proxy.pid;
worker_rlimit_nofile {nofile};
events {{ worker_connections {max(1024, nofile - 100)}; }}
http {{
  access_log off;
  tcp_nodelay on;
  keepalive_timeout {IDLE_SECONDS}s;
  keepalive_requests 100000000;
  client_header_timeout {IDLE_SECONDS}s;
  client_body_temp_path {workdir}/nginx-body;
  proxy_temp_path {workdir}/nginx-proxy-temp;
  upstream upstream {{
    server {server};
    keepalive 256;
    keepalive_requests 100000000;
    keepalive_timeout {IDLE_SECONDS}s;
  }}
  server {{
    listen {l7[0]}:{l7[1]} backlog=1024;{location}
  }}
  server {{
    listen {h2[0]}:{h2[1]} http2 backlog=1024;{location}
  }}
}}
stream {{
  upstream upstream-tcp {{ server {server}; }}
  server {{
    listen {l4[0]}:{l4[1]} backlog=1024;
    proxy_pass upstream-tcp;
    proxy_connect_timeout 2s;
    proxy_timeout {IDLE_SECONDS}s;
  }}
}}
"""
    )
    log = workdir / "nginx-proxy.log"
    proc = group.start([nginx, "-c", str(conf), "-e", str(log), "-p", str(workdir)], log)
    running = Running("nginx", proc, Endpoints(l7, l4, h2), log)
    _wait_ready(running, [l7, l4])
    return running


Starter = Callable[[], Running]


def environment_note() -> str:
    """Why the process limits are what they are (for the report)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return f"RLIMIT_NOFILE soft {soft}, hard {hard}; pid {os.getpid()}"

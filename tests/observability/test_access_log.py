"""Access logs: real `seaway run` processes, real traffic, the log file read back."""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path
from typing import Any

from seaway.accesslog import AccessLog, AccessLogSpec, ConnectionRecord
from seaway.testing.processes import (
    Processes,
    free_port,
    http_get,
    seaway_config,
    service_manifests,
    start_backend,
    start_seaway,
    wait_until,
    write_manifests,
)

TIMEOUT = 3.0


def _lines(path: Path, count: int) -> list[str]:
    def enough() -> list[str] | None:
        lines = path.read_text().splitlines() if path.exists() else []
        return lines if len(lines) >= count else None

    return list(wait_until(enough, timeout=5))


def _refused(ip: str, port: int) -> bool:
    """Connect and read: True when seaway closes at once (a reset, or no data at all)."""
    try:
        with socket.create_connection((ip, port), timeout=TIMEOUT) as s:
            return s.recv(10) == b""
    except ConnectionResetError:
        # The reset can arrive while connect() itself is still returning, or at recv().
        return True


def test_json_lines_for_each_connection_with_bytes_and_results(
    processes: Processes, tmp_path: Path
) -> None:
    backends = [start_backend(processes, f"pod-{i}") for i in range(2)]
    manifest = tmp_path / "web.yaml"
    write_manifests(
        manifest,
        [
            seaway_config("127.243.4.0/24"),
            *service_manifests("web", backends),
            *service_manifests("empty", [], port=8081),
        ],
    )
    access = tmp_path / "access.log"
    lb = start_seaway(processes, tmp_path, manifest, extra_args=["--access-log", str(access)])
    ip = lb.ingress("default/web")
    empty_ip = lb.ingress("default/empty")
    for _ in range(10):
        http_get(ip, 8080)
    assert _refused(empty_ip, 8081)

    records = [json.loads(line) for line in _lines(access, 11)]
    ok = [r for r in records if r["service"] == "default/web"]
    assert len(ok) == 10
    backend_keys = {f"{b.host}:{b.port}" for b in backends}
    for r in ok:
        assert r["type"] == "connection"
        assert r["protocol"] == "TCP"
        assert r["result"] == "ok"
        assert r["listener"] == f"TCP/{ip}:8080"
        assert r["backend"] in backend_keys
        assert re.fullmatch(r"127\.0\.0\.1:\d+", r["client"])
        assert r["bytes_to_backend"] == len(b"GET /hostname HTTP/1.1\r\nHost: t\r\n") + len(
            b"Connection: close\r\n\r\n"
        )
        assert r["bytes_from_backend"] > 5
        assert 0 <= r["connect_ms"] <= r["duration_ms"] < 3000
        assert r["start"] <= r["end"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["start"])
    refused = [r for r in records if r["service"] == "default/empty"]
    assert [(r["result"], r["backend"], r["bytes_to_backend"]) for r in refused] == [
        ("no-backend", None, 0)
    ]


def test_text_format_from_the_seaway_config_and_connect_failures(
    processes: Processes, tmp_path: Path
) -> None:
    dead = start_backend(processes, "pod-dead")
    manifest = tmp_path / "web.yaml"
    access = tmp_path / "access.txt"
    config = seaway_config(
        "127.243.5.0/24",
        accessLog={"path": str(access), "format": "text"},
        connectAttempts=1,
    )
    write_manifests(manifest, [config, *service_manifests("web", [dead])])
    lb = start_seaway(processes, tmp_path, manifest)
    ip = lb.ingress("default/web")
    http_get(ip, 8080)
    processes.procs.remove(dead.proc)
    dead.proc.terminate()
    dead.proc.wait(5)
    assert _refused(ip, 8080)

    lines = _lines(access, 2)
    fields = [line.split(" ") for line in lines]
    assert [f[5] for f in fields] == ["ok", "connect-failed"]
    ok = fields[0]
    assert ok[2] == f"TCP/{ip}:8080"
    assert ok[3] == "default/web"
    assert ok[4] == f"{dead.host}:{dead.port}"
    assert re.fullmatch(r"\d+\.\dms", ok[6])
    assert ok[8].startswith("up=") and int(ok[8][3:]) > 0
    assert ok[9].startswith("down=") and int(ok[9][5:]) > 0
    assert fields[1][4] == "-"  # no backend connected
    assert "access log: text lines to" in lb.logs()


def test_writer_thread_follows_log_rotation_and_counts_drops(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    log = AccessLog(AccessLogSpec(str(path)))
    record = ConnectionRecord(
        start=time.time(),
        duration=0.01,
        protocol="UDP",
        client=("::1", 5353),
        listener="UDP/[::1]:53",
        service="default/dns",
        backend="[::1]:5300",
        bytes_to_backend=30,
        bytes_from_backend=90,
        result="ok",
    )
    log.start()
    try:
        log.emit(record)
        assert log.flush()
        path.rename(tmp_path / "a.log.1")  # what logrotate does
        time.sleep(1.1)  # the writer looks for a moved file at most once a second
        log.emit(record)
        log.emit(record)
        assert log.flush()
    finally:
        log.close()
    rotated = (tmp_path / "a.log.1").read_text().splitlines()
    current = path.read_text().splitlines()
    assert len(rotated) + len(current) == 3
    assert current, "the writer did not reopen the log file after rotation"
    assert json.loads(current[-1])["client"] == "[::1]:5353"
    assert log.dropped == 0


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    log = AccessLog(AccessLogSpec(str(tmp_path / "never.log")), queue_limit=3)
    record = ConnectionRecord(time.time(), 0.0, "TCP", ("127.0.0.1", 1), "l", "s", None, 0, 0, "ok")
    started = time.monotonic()
    for _ in range(5):  # no writer thread: nothing drains the queue
        log.emit(record)
    assert time.monotonic() - started < 0.5
    assert log.dropped == 2
    log.close()


def test_unwritable_path_is_reported_with_what_to_do(processes: Processes, tmp_path: Path) -> None:
    backends = [start_backend(processes, "pod-0")]
    manifest = tmp_path / "web.yaml"
    write_manifests(
        manifest, [seaway_config("127.243.6.0/24"), *service_manifests("web", backends)]
    )
    missing = tmp_path / "no-such-dir" / "access.log"
    lb = start_seaway(processes, tmp_path, manifest, extra_args=["--access-log", str(missing)])
    http_get(lb.ingress("default/web"), 8080)  # seaway serves on without its access log
    wait_until(lambda: "cannot open the access log" in lb.logs(), timeout=3)
    assert "access logs are off until the path is writable" in lb.logs()
    assert free_port()  # the machine still has ports: nothing leaked a listener loop


def _write_records(path: str, tag: str, count: int, go: Any) -> None:
    """One writer process (a worker, as far as the log file is concerned)."""
    log = AccessLog(AccessLogSpec(path))
    log.start()
    go.wait(30)  # both writers at once
    for i in range(count):
        # Lines of 100 B to 6 KB: a file buffer flushed when it is full would cut some.
        size = 100 + (i * 7919) % 6000
        log.emit(
            ConnectionRecord(
                time.time(), 0.0, "TCP", ("127.0.0.1", i), "l", tag * size, None, 0, 0, "ok"
            )
        )
    assert log.flush(30)
    log.close()


def test_lines_of_two_writer_processes_never_cut_into_each_other(tmp_path: Path) -> None:
    # `seaway run --workers N`: every worker appends to the same file.
    import multiprocessing  # noqa: PLC0415

    path = tmp_path / "shared.log"
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    writers = [
        context.Process(target=_write_records, args=(str(path), tag, 10000, go)) for tag in "ab"
    ]
    for writer in writers:
        writer.start()
    go.set()
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    lines = path.read_text().splitlines()
    assert len(lines) == 20000
    services = [json.loads(line)["service"] for line in lines]
    assert sorted({s[0] for s in services}) == ["a", "b"]
    assert all(len(set(s)) == 1 for s in services)

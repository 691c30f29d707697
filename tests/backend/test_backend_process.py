"""``python -m seaway.backend`` as a real process: signals, delayed shutdown, exit codes."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

TIMEOUT = 5.0


def free_port() -> int:
    """A port free on TCP and UDP a moment ago."""
    for _ in range(50):
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port")


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
            proc.wait(5)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


def start(procs: list[subprocess.Popen[bytes]], *args: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "seaway.backend", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    procs.append(proc)
    return proc


def wait_ready(proc: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the backend never listened")


def test_delay_shutdown_keeps_serving_not_ready_then_exits_zero(
    procs: list[subprocess.Popen[bytes]],
) -> None:
    port = free_port()
    proc = start(
        procs, "--listen", f"127.0.0.1:{port}", "--name", "slow", "--delay-shutdown", "1.5"
    )
    wait_ready(proc, port)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(timeout=TIMEOUT) as client:
        assert client.get(f"{base}/readyz").status_code == 200
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        # Still serving during the delay, on new connections too; only readiness fails.
        assert client.get(f"{base}/hostname").text == "slow"
        assert client.get(f"{base}/readyz").status_code == 503
        assert client.get(f"{base}/healthz").status_code == 200
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
        raw.sendall(b"raw bytes")
        assert raw.recv(100) == b"raw bytes"  # the echo runs on uvloop in the process
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(TIMEOUT)
        udp.sendto(b"hostname", ("127.0.0.1", port))
        assert udp.recvfrom(100)[0] == b"slow"
    assert proc.wait(10) == 0
    elapsed = time.monotonic() - signalled
    assert 1.4 < elapsed < 5, elapsed
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_sigterm_without_delay_exits_zero_at_once(procs: list[subprocess.Popen[bytes]]) -> None:
    port = free_port()
    proc = start(procs, "--listen", f"127.0.0.1:{port}", "--name", "quick")
    wait_ready(proc, port)
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert time.monotonic() - signalled < 2.5


def test_second_signal_cuts_the_delay_short(procs: list[subprocess.Popen[bytes]]) -> None:
    port = free_port()
    proc = start(procs, "--listen", f"127.0.0.1:{port}", "--name", "x", "--delay-shutdown", "30")
    wait_ready(proc, port)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 0


def test_bad_listen_address_exits_one_with_a_message(
    procs: list[subprocess.Popen[bytes]],
) -> None:
    proc = start(procs, "--listen", "::1:80")
    assert proc.wait(10) == 1
    assert proc.stderr is not None
    assert b"put an IPv6 host in brackets" in proc.stderr.read()

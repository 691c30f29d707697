"""Health checks shared by the workers: worker 0's table of probe results in a real
shared-state file, written and read by separate processes, and the follower that
replays it as the scheduler's events."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import subprocess
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from seaway.core.config import Backend, BackendSet, DesiredConfig, HealthCheck
from seaway.core.health import EventKind, HealthEvent, HealthTracker, ProbeTarget
from seaway.core.sharing import (
    HEALTH_HISTORY_BITS,
    health_slot_check,
    health_target_key,
    missed_results,
)
from seaway.health.scheduler import HealthCheckScheduler
from seaway.health.shared_checks import HealthFollower, ProbePublisher
from seaway.shared_state import Published, SharedRegion
from seaway.testing.processes import PYTHON

CHECK = HealthCheck(protocol="tcp", interval=0.05, timeout=0.05, initial_jitter=0.0)
KEY = health_target_key("127.0.0.1", 8000, CHECK)


@pytest.fixture
def region() -> Iterator[SharedRegion]:
    with SharedRegion.create(2) as r:
        yield r


def in_child(path: Path, body: str) -> Any:
    """Run ``body`` in a new Python process as worker 0 of the shared state (``state``,
    ``publisher``); what it assigns to ``result`` comes back (JSON)."""
    script = (
        "import json\n"
        "from seaway.shared_state import attach_worker\n"
        f"state = attach_worker({str(path)!r}, 0)\n"
        "publisher = state.health.publisher()\n"
        "result = None\n" + textwrap.dedent(body) + "\nprint(json.dumps(result))\n"
    )
    done = subprocess.run(
        [PYTHON, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_results_published_by_one_process_are_read_by_another(region: SharedRegion) -> None:
    reader = region.attach(1).health.reader()
    assert reader.read(KEY, None) == "absent"
    in_child(region.path, "\n".join(f"publisher.publish({KEY}, {p}, 0.0)" for p in (1, 0, 0)))
    got = reader.read(KEY, None)
    assert got == Published(3, 0b100)
    assert isinstance(got, Published)
    assert missed_results(None, got.sequence, got.history) == (True, False, False)
    assert reader.read(KEY, 3) == "same"  # nothing new since sequence 3


def test_a_torn_slot_is_never_taken_and_is_read_again_once_whole(region: SharedRegion) -> None:
    worker = region.attach(0)
    publisher = worker.health.publisher()
    publisher.publish(KEY, True, 0.0)
    i = worker.health.find(KEY)
    words = region.words
    # The writer stopped between its stores: new sequence and history, old check.
    words[i + 1] = 2
    words[i + 2] = 0b10
    reader = worker.health.reader()
    assert reader.read(KEY, 1) == "torn"
    assert reader.read(KEY, None) == "torn"
    words[i + 3] = health_slot_check(KEY, 2, 0b10)  # the writer's last store
    assert reader.read(KEY, 1) == Published(2, 0b10)


def test_a_reader_racing_a_writer_process_sees_only_whole_slots(region: SharedRegion) -> None:
    # The child publishes "passed" on odd sequence numbers only, so every intact slot's
    # history follows from its sequence; a torn one taken for intact would not.
    writer = subprocess.Popen(
        [
            PYTHON,
            "-c",
            textwrap.dedent(f"""
                from seaway.shared_state import attach_worker
                publisher = attach_worker({str(region.path)!r}, 0).health.publisher()
                for n in range(1, 200_001):
                    publisher.publish({KEY}, n % 2 == 1, 0.0)
            """),
        ]
    )
    try:
        reader = region.attach(1).health.reader()
        intact = 0
        while writer.poll() is None or intact == 0:
            got = reader.read(KEY, None)
            if isinstance(got, Published):
                intact += 1
                window = min(got.sequence, HEALTH_HISTORY_BITS)
                expected = sum(1 << age for age in range(window) if (got.sequence - age) % 2 == 1)
                assert got.history == expected, got
        assert writer.wait() == 0
        assert reader.read(KEY, None) == Published(200_000, int("10" * 32, 2))
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()


def test_missed_results_are_replayed_in_order_up_to_the_window() -> None:
    history = 0b1011  # newest last: ..., pass, fail, pass, pass
    assert missed_results(None, 4, history) == (True, False, True, True)
    assert missed_results(2, 4, history) == (True, True)
    assert missed_results(4, 4, history) == ()
    # More than the window missed: the last 64, oldest first.
    full = (1 << 64) - 2  # every result passed but the newest
    replay = missed_results(10, 100, full)
    assert len(replay) == HEALTH_HISTORY_BITS
    assert replay == (True,) * 63 + (False,)
    # A sequence that went back (the slot was given up and taken again): all of it.
    assert missed_results(50, 2, 0b01) == (False, True)


def test_a_restarted_writer_continues_each_sequence(region: SharedRegion) -> None:
    in_child(
        region.path, f"publisher.publish({KEY}, True, 0.0)\npublisher.publish({KEY}, True, 0.0)"
    )
    # A new worker 0 (a new process) reads the slot first.
    assert in_child(
        region.path,
        f"""
        result = [publisher.sequence({KEY})]
        publisher.publish({KEY}, False, 0.0)
        result.append(publisher.sequence({KEY}))
        """,
    ) == [2, 3]
    reader = region.attach(1).health.reader()
    assert reader.read(KEY, 2) == Published(3, 0b110)
    # Worker 0 died between its stores: the next one continues from the sequence word.
    i = region.attach(1).health.find(KEY)
    region.words[i + 1] = 4
    assert (
        in_child(
            region.path, f"publisher.publish({KEY}, True, 0.0)\nresult = publisher.sequence({KEY})"
        )
        == 5
    )
    got = reader.read(KEY, 3)
    assert isinstance(got, Published) and got.sequence == 5


def test_slots_of_targets_no_longer_probed_are_given_up_after_a_while(
    region: SharedRegion,
) -> None:
    health = region.attach(0).health
    publisher = health.publisher(release_after=60.0)
    other = health_target_key("127.0.0.2", 8000, CHECK)
    publisher.publish(KEY, True, 0.0)
    publisher.publish(other, True, 0.0)
    publisher.retain({other}, 10.0)
    reader = health.reader()
    assert reader.read(KEY, None) == Published(1, 1)  # kept for a while
    publisher.retain({other}, 69.0)
    assert reader.read(KEY, None) == Published(1, 1)
    publisher.publish(other, True, 70.0)  # any write gives up what expired
    assert reader.read(KEY, None) == "absent"
    assert health.find(KEY) == -1
    assert reader.read(other, None) == Published(2, 0b11)


def _set(key: str, backends: list[Backend], check: HealthCheck) -> BackendSet:
    return BackendSet(
        key=key,
        service=key.split(":", maxsplit=1)[0],
        port_name="main",
        protocol="TCP",
        backends=tuple(backends),
        health_check=check,
    )


def _config(check: HealthCheck) -> DesiredConfig:
    backend = Backend(address="127.0.0.1", port=8000)
    return DesiredConfig(
        backend_sets={
            "default/a:80/TCP": _set("default/a:80/TCP", [backend], check),
            "default/b:80/TCP": _set("default/b:80/TCP", [backend], check),
        }
    )


def _tracker(config: DesiredConfig) -> HealthTracker:
    tracker = HealthTracker()
    tracker.sync(config)
    return tracker


def _target(tracker: HealthTracker, config: DesiredConfig) -> ProbeTarget:
    (target,) = tracker.probe_targets(config)
    return target


async def test_the_follower_replays_the_events_the_prober_reported(
    region: SharedRegion,
) -> None:
    check = HealthCheck(protocol="tcp", healthy_threshold=2, unhealthy_threshold=3)
    config = _config(check)
    prober, follower_state = _tracker(config), _tracker(config)
    target = _target(prober, config)
    assert len(target.refs) == 2  # one target for two sets: probed once
    publisher = ProbePublisher(region.attach(0).health.publisher(), lambda: 0.0)
    publisher.sync([target], 0.0)
    events: list[HealthEvent] = []

    def record(event: HealthEvent) -> None:
        events.append(event)
        follower_state.apply(event)

    follower = HealthFollower(
        region.attach(1).health.reader(), record, HealthCheckScheduler(record, rng=random.Random(1))
    )
    follower.sync([target])
    assert follower.poll(1.0) == 0  # nothing published yet

    def probed(passed: bool, at: float) -> None:
        """What worker 0 does with one result: publish it, report it to its tracker."""
        publisher.publish(target.address, target.port, target.check, passed)
        for set_key, backend_key in target.refs:
            kind: EventKind = "check-passed" if passed else "check-failed"
            prober.apply(HealthEvent(set_key, backend_key, kind, at))

    for passed in (True, False, False, False):
        probed(passed, 1.0)
    assert follower.poll(2.0) == 8
    assert [(e.set_key, e.kind, e.at) for e in events] == [
        (set_key, kind, 2.0)
        for kind in ("check-passed", "check-failed", "check-failed", "check-failed")
        for set_key in ("default/a:80/TCP", "default/b:80/TCP")
    ]
    statuses = {follower_state.status(ref[0], ref[1]) for ref in target.refs}
    assert statuses == {prober.status(*target.refs[0])} == {"unhealthy"}
    assert follower.poll(3.0) == 0  # nothing new: no events

    # A follower that missed more than the window replays the last 64 only.
    for n in range(100):
        probed(n >= 98, 4.0)  # ... fail, pass, pass: back up
    events.clear()
    assert follower.poll(5.0) == 2 * HEALTH_HISTORY_BITS
    assert follower_state.status(*target.refs[0]) == prober.status(*target.refs[0]) == "healthy"
    assert [e.kind for e in events[-6:]] == ["check-failed"] * 2 + ["check-passed"] * 4
    await follower.close()


@pytest.fixture
async def listener() -> AsyncIterator[tuple[int, list[int]]]:
    """A real TCP listener on loopback; the list counts its connections."""
    accepted: list[int] = []

    def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1]), accepted
    finally:
        server.close()
        await server.wait_closed()


async def test_a_target_without_room_in_the_table_is_probed_by_the_follower_itself(
    listener: tuple[int, list[int]], caplog: pytest.LogCaptureFixture
) -> None:
    port, accepted = listener
    with SharedRegion.create(2, health_slots=4, health_probes=2) as small:
        check = HealthCheck(protocol="tcp", interval=0.05, timeout=0.05, initial_jitter=0.0)
        config = DesiredConfig(
            backend_sets={
                "default/a:80/TCP": _set(
                    "default/a:80/TCP", [Backend(address="127.0.0.1", port=port)], check
                )
            }
        )
        tracker = _tracker(config)
        target = _target(tracker, config)
        key = health_target_key(target.address, target.port, target.check)
        publisher = small.attach(0).health.publisher()
        # Other targets take both slots of this target's probe sequence.
        mask = 3
        for home in ((key + 1) & mask, key & mask):
            filler = next(k for k in range(1, 1000) if k & mask == home)
            assert publisher.publish(filler, True, 0.0)
        with caplog.at_level(logging.WARNING, logger="seaway.shared_state"):
            assert not publisher.publish(key, True, 0.0)
            assert not publisher.publish(key, True, 0.0)
        assert sum("no free slot" in r.getMessage() for r in caplog.records) == 1

        events: list[HealthEvent] = []
        probed = asyncio.Event()

        def record(event: HealthEvent) -> None:
            events.append(event)
            probed.set()

        scheduler = HealthCheckScheduler(record, rng=random.Random(1))
        follower = HealthFollower(small.attach(1).health.reader(), record, scheduler)
        follower.sync([target])
        try:
            follower.poll(0.0)
            assert follower.probed_here == (target,)
            async with asyncio.timeout(5):
                await probed.wait()
            assert events[0].kind == "check-passed" and accepted
        finally:
            await follower.close()

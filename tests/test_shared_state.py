"""The workers' shared state (seaway.shared_state): a real file in /dev/shm, written and
read by real separate processes; header checks; full tables; the supervisor's zeroing
of a dead worker's counts."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from seaway import shared_state
from seaway.shared_state import (
    HEADER_WORDS,
    LAYOUT_VERSION,
    WORD,
    SharedRegion,
    SharedStateError,
    attach_worker,
)
from seaway.testing.processes import PYTHON
from seaway.workers import Supervisor

K = 0x1234_5678_9ABC_DEF0
L = 0x0FED_CBA9_8765_4321


@pytest.fixture
def region() -> Any:
    with SharedRegion.create(4) as r:
        yield r


def in_child(path: Path, index: int, body: str) -> Any:
    """Run ``body`` in a new Python process attached to the shared state as worker
    ``index`` (``state``); what it assigns to ``result`` comes back (JSON)."""
    script = (
        "import json, sys\n"
        "from seaway.shared_state import attach_worker\n"
        f"state = attach_worker({str(path)!r}, {index})\n"
        "result = None\n" + textwrap.dedent(body) + "\nprint(json.dumps(result))\n"
    )
    done = subprocess.run(
        [PYTHON, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_counts_of_every_worker_are_summed_and_a_row_can_be_zeroed(region: SharedRegion) -> None:
    in_child(region.path, 0, f"for _ in range(3): state.counts.increment({K})")
    in_child(
        region.path,
        1,
        f"state.counts.increment({K}); state.counts.increment({K}); state.counts.increment({L})",
    )
    # A third process reads both rows (and has none of its own).
    assert in_child(
        region.path, 3, f"result = [state.counts.total({K}), state.counts.total({L})]"
    ) == [
        5,
        1,
    ]
    parent = region.attach(2)
    parent.counts.increment(K)
    assert parent.counts.total(K) == 6
    assert parent.counts.own(K) == 1
    region.clear_row(0)  # worker 0 died: its three connections died with it
    assert in_child(region.path, 3, f"result = state.counts.total({K})") == 3
    assert parent.counts.total(K) == 3  # the slot cached for row 0 is re-probed


def test_counts_never_go_below_zero_and_reset_forgets(region: SharedRegion) -> None:
    worker = region.attach(0)
    worker.counts.decrement(K)  # nothing open: nothing to count down
    assert worker.counts.total(K) == 0
    worker.counts.increment(K)
    worker.counts.increment(K)
    worker.counts.decrement(K)
    worker.counts.decrement(K)
    worker.counts.decrement(K)
    assert worker.counts.total(K) == 0
    worker.counts.increment(K)
    worker.counts.increment(K)
    worker.counts.reset(K)
    assert worker.counts.total(K) == 0
    assert in_child(region.path, 1, f"result = state.counts.total({K})") == 0


def test_attach_clears_the_row_an_earlier_process_left(region: SharedRegion) -> None:
    in_child(region.path, 0, f"state.counts.increment({K})")
    reader = region.attach(3)
    assert reader.counts.total(K) == 1
    in_child(region.path, 0, "pass")  # a restarted worker 0
    assert reader.counts.total(K) == 0


def test_reader_follows_keys_that_appear_and_slots_that_go_to_another_key() -> None:
    # Two slots, one probe: K and M share their only slot.
    with SharedRegion.create(2, count_slots=2, count_probes=1) as region:
        writer, reader = region.attach(0), region.attach(1)
        m = K + 2  # the same home slot as K
        assert reader.counts.total(K) == 0  # the reader notes K absent from both rows
        writer.counts.increment(K)  # the row's claim counter moves
        assert reader.counts.total(K) == 1  # so the reader looks again, and caches K's slot
        writer.counts.decrement(K)
        writer.counts.increment(m)  # K's count was 0: its slot is reused for M
        assert reader.counts.total(K) == 0
        assert reader.counts.total(m) == 1


def test_a_full_row_counts_locally_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    with SharedRegion.create(2, count_slots=4, count_probes=2) as region:
        worker, other = region.attach(0), region.attach(1)
        a, b, c, d = 4, 8, 12, 16  # all with home slot 0; only slots 0 and 1 are probed
        worker.counts.increment(a)
        worker.counts.increment(b)
        with caplog.at_level(logging.WARNING, logger="seaway.shared_state"):
            worker.counts.increment(c)
            worker.counts.increment(c)
        assert [r.message.count("row is full") for r in caplog.records] == [1]
        assert worker.counts.total(c) == 2  # this worker still counts it...
        assert other.counts.total(c) == 0  # ...the others do not see it
        worker.counts.decrement(c)
        worker.counts.decrement(c)
        assert worker.counts.total(c) == 0
        # A slot whose count is back to zero is reused (the row compacts itself).
        worker.counts.decrement(a)
        worker.counts.increment(d)
        assert other.counts.total(d) == 1
        assert other.counts.total(b) == 1
        assert other.counts.total(a) == 0


def test_affinity_written_by_one_process_is_read_by_another(region: SharedRegion) -> None:
    in_child(region.path, 0, f"state.affinity.store({K}, 42, now=1000.0)")
    parent = region.attach(1)
    assert parent.affinity.lookup(K, now=1010.0, timeout=60.0) == 42
    assert parent.affinity.lookup(L, now=1010.0, timeout=60.0) is None
    # The other process refreshes the entry, with another backend.
    in_child(region.path, 2, f"state.affinity.store({K}, 7, now=1050.0)")
    assert parent.affinity.lookup(K, now=1100.0, timeout=60.0) == 7
    assert (
        in_child(region.path, 3, f"result = state.affinity.lookup({K}, now=1100.0, timeout=60.0)")
        == 7
    )


def test_affinity_expires_after_the_idle_timeout(region: SharedRegion) -> None:
    state = region.attach(0)
    state.affinity.store(K, 42, now=100.0)
    assert state.affinity.lookup(K, now=159.999, timeout=60.0) == 42
    assert state.affinity.lookup(K, now=160.0, timeout=60.0) is None  # exactly 60 s idle
    state.affinity.store(K, 42, now=150.0)  # a new connection refreshes it
    assert state.affinity.lookup(K, now=200.0, timeout=60.0) == 42
    # The timeout is the reader's (each Service has its own timeoutSeconds).
    assert state.affinity.lookup(K, now=200.0, timeout=10.0) is None


def test_torn_or_invalid_entries_are_misses_and_are_overwritten_first() -> None:
    with SharedRegion.create(1, affinity_entries=4, affinity_probes=2) as region:
        state = region.attach(0)
        start = region.layout.affinity_offset
        words = region.words
        # Slot 0: K with a check word that does not match (a writer cut short).
        words[start], words[start + 1], words[start + 2] = K, 42, 100_000_000
        words[start + 3] = K ^ 42  # the time is missing from the check
        assert state.affinity.lookup(K, now=101.0, timeout=60.0) is None
        # A valid entry of another key in slot 1, older than the torn one.
        other = 5  # home slot 1
        state.affinity.store(other, 9, now=50.0)
        assert state.affinity.lookup(other, now=51.0, timeout=60.0) == 9
        # A new key with home slot 0: the torn entry goes, the live one stays.
        new = 8
        state.affinity.store(new, 3, now=60.0)
        assert words[start] == new
        assert state.affinity.lookup(new, now=61.0, timeout=60.0) == 3
        assert state.affinity.lookup(other, now=61.0, timeout=60.0) == 9


def test_full_affinity_probe_sequence_replaces_the_least_recently_seen() -> None:
    with SharedRegion.create(1, affinity_entries=8, affinity_probes=3) as region:
        state = region.attach(0)
        # Three keys with home slot 0 fill its three probe slots.
        state.affinity.store(8, 1, now=10.0)
        state.affinity.store(16, 2, now=5.0)  # the least recently seen
        state.affinity.store(24, 3, now=20.0)
        state.affinity.store(32, 4, now=30.0)
        assert state.affinity.lookup(16, now=31.0, timeout=100.0) is None
        assert [state.affinity.lookup(k, now=31.0, timeout=100.0) for k in (8, 24, 32)] == [
            1,
            3,
            4,
        ]
        # A key already in the table is refreshed in place, not duplicated.
        state.affinity.store(8, 5, now=40.0)
        state.affinity.store(40, 6, now=41.0)  # evicts 24 (seen at 20), not 8
        assert state.affinity.lookup(8, now=42.0, timeout=100.0) == 5
        assert state.affinity.lookup(24, now=42.0, timeout=100.0) is None


def _rewrite_word(path: Path, index: int, value: int) -> None:
    with path.open("r+b") as f:
        f.seek(index * WORD)
        f.write(value.to_bytes(WORD, sys.byteorder))


def test_header_mismatch_is_a_clear_error(region: SharedRegion) -> None:
    SharedRegion.open(region.path).close()  # the header of a fresh file is accepted
    _rewrite_word(region.path, 1, LAYOUT_VERSION + 1)
    with pytest.raises(SharedStateError, match=rf"layout version {LAYOUT_VERSION + 1}, this"):
        SharedRegion.open(region.path)
    _rewrite_word(region.path, 1, LAYOUT_VERSION)
    _rewrite_word(region.path, 3, region.layout.count_slots * 2)  # another row size
    with pytest.raises(SharedStateError, match="the header says"):
        SharedRegion.open(region.path)
    _rewrite_word(region.path, 0, 0)
    with pytest.raises(SharedStateError, match="bad magic"):
        SharedRegion.open(region.path)
    with pytest.raises(SharedStateError, match="cannot open"):
        SharedRegion.open(region.path.with_name("no-such-state"))


def test_worker_index_outside_the_rows_and_a_truncated_file_are_refused(
    region: SharedRegion, tmp_path: Path
) -> None:
    with pytest.raises(SharedStateError, match="worker index 4, the file has 4 rows"):
        attach_worker(region.path, 4)
    short = tmp_path / "short"
    short.write_bytes(region.path.read_bytes()[: HEADER_WORDS * WORD + 16])
    with pytest.raises(SharedStateError, match="the file has"):
        SharedRegion.open(short)
    # A worker that cannot use the file exits 1 with the reason.
    done = subprocess.run(
        [PYTHON, "-m", "seaway", "run", "-f", str(tmp_path), "--worker-index", "0",
         "--shared-state", str(short)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"error: shared state {short}: the header says" in done.stderr


def test_the_file_is_in_dev_shm_and_removed_on_exit() -> None:
    with SharedRegion.create(2) as region:
        path = region.path
        assert path.parent == Path("/dev/shm")
        assert path.stat().st_size == region.layout.size
        assert (path.stat().st_mode & 0o777) == 0o600
    assert not path.exists()


def test_without_dev_shm_a_private_directory_is_used_and_removed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(shared_state, "SHM_DIRECTORY", tmp_path / "no-shm")
    region = SharedRegion.create(2)
    path = region.path
    try:
        assert path.parent != Path("/dev/shm") and path.exists()
        assert (path.parent.stat().st_mode & 0o777) == 0o700
        in_child(path, 0, f"state.counts.increment({K})")
        assert region.attach(1).counts.total(K) == 1
    finally:
        region.close()
    assert not path.exists() and not path.parent.exists()


def test_supervisor_zeroes_the_row_of_a_worker_that_died(region: SharedRegion) -> None:
    reader = region.attach(3)
    worker = textwrap.dedent(f"""
        import os, signal
        from seaway.shared_state import attach_worker
        state = attach_worker({str(region.path)!r}, 0)
        state.counts.increment({K})
        state.counts.increment({K})
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    seen: list[tuple[int, int]] = []

    def on_exit(index: int) -> None:
        seen.append((index, reader.counts.total(K)))
        region.clear_row(index)

    # No restarts allowed: the supervisor gives up after the first death.
    supervisor = Supervisor(lambda i: [PYTHON, "-c", worker], 1, restart_limit=0, on_exit=on_exit)
    assert supervisor.run() == 1
    assert seen == [(0, 2)]  # the dead worker's connections were still counted...
    assert reader.counts.total(K) == 0  # ...until the supervisor zeroed its row


def test_a_supervised_worker_gets_the_path_of_the_shared_state(tmp_path: Path) -> None:
    from seaway.cli import build_parser  # noqa: PLC0415
    from seaway.workers import worker_argv  # noqa: PLC0415

    args = build_parser().parse_args(["run", "-f", str(tmp_path), "--workers", "2"])
    argv = worker_argv(args, 1, "127.0.0.1:9981", shared_state="/dev/shm/seaway-state-x")
    assert argv[argv.index("--shared-state") + 1] == "/dev/shm/seaway-state-x"
    assert argv[argv.index("--worker-index") + 1] == "1"
    parsed = build_parser().parse_args(argv[3:])
    assert parsed.shared_state == "/dev/shm/seaway-state-x"

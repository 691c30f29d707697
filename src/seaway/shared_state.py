"""The state the workers of one ``seaway run --workers N`` share: a file in /dev/shm.

The supervisor creates the file (``SharedRegion.create``) before it starts the
workers, passes its path to each (``--shared-state PATH``) and removes it when it
exits. Every worker maps it (``attach``) and finds there:

- **connection counts**: one row per worker, written only by that worker (a single
  writer, so no lock), read by all. A row is an open-addressing table of
  ``(key, count)`` slots; the count of a key is the sum over the rows. The
  supervisor zeroes the row of a worker that died: its connections died with it.
- **ClientIP affinity**: one table of ``(key, backend, last seen, check)`` entries,
  written by every worker without a lock. ``check`` is the xor of the other three
  words: a reader that catches an entry half written sees a wrong check and takes it
  as a miss. Last seen is in integer microseconds of the event loop's clock, which is
  CLOCK_MONOTONIC under asyncio and uvloop alike: one clock for the whole system, so
  workers compare each other's times.
- **active health checks**: one table of ``(key, sequence, history, check)`` slots,
  one per probe target, written only by worker 0 (the prober) and read by the other
  workers (the followers, ``seaway.health.follower``). ``sequence`` counts the
  target's results, ``history`` holds the last 64 (bit 0 the newest, 1 = passed),
  ``check`` is a hash of the other three words (``health_slot_check``): a reader
  that catches the writer between its stores sees a wrong check and reads again.
  A restarted worker 0 reads the slots first and continues their sequences.

The file is one array of 64-bit words. Each word is read and written whole: an
aligned 8-byte load or store is atomic on the CPUs seaway runs on (x86-64, arm64),
so a reader sees either the old or the new value of a word, never a mix.

Layout (word offsets; all sizes in the header, checked on open)::

    0   magic "SEAWAYSS", layout version, rows, slots per row, affinity entries,
        count probes, affinity probes, file size in bytes, health slots, health probes
    10  claims: one word per row, bumped whenever a slot of the row gets a key
    ... counts: rows x slots x (key, count)
    ... affinity: entries x (key, backend, last seen us, check)
    ... health: slots x (key, sequence, history, check)
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import mmap
import operator
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, TypeVar

from seaway.core.sharing import (
    SharedAffinity,
    SharedCounts,
    health_slot_check,
    record_result,
)

log = logging.getLogger("seaway.shared_state")

N = TypeVar("N", bound=Hashable)

# The words are in the CPU's byte order (the file never leaves the machine).
MAGIC = int.from_bytes(b"SEAWAYSS", "little")
# Bump on any change of the layout or of the meaning of a word (or of the key hashes,
# seaway.core.sharing): a worker of another seaway version must refuse the file.
LAYOUT_VERSION = 2
HEADER_WORDS = 10
WORD = 8  # bytes

# (set, backend) pairs one worker can count at once. A slot is reused once its count
# is back to zero, so this bounds pairs with open connections, not pairs ever seen.
COUNT_SLOTS = 8192
# Affinity entries for all sets and clients together (8 MiB). kube-proxy's "recent"
# module keeps 200 clients per Service by default (ip_list_tot).
AFFINITY_ENTRIES = 1 << 18
# How far from its home slot a key may land. Bounded, so that a lookup costs a few
# reads whatever the table holds.
COUNT_PROBES = 16
AFFINITY_PROBES = 8
# Reads of an entry whose check word is wrong before it counts as a miss: the writer
# may be between its stores.
AFFINITY_READ_ATTEMPTS = 3
# Cached slot positions (per key) a reader keeps before it starts over.
MAX_CACHED_POSITIONS = 16384
# Health check targets (address, port, check) worker 0 can publish (512 KiB). A
# target beyond that (its probe sequence full) is probed by every worker itself.
HEALTH_SLOTS = 16384
HEALTH_PROBES = 16
# Reads of a health slot whose check word is wrong before the reader gives up until
# its next poll: the writer may be between its stores.
HEALTH_READ_ATTEMPTS = 3
# How long worker 0 keeps the slot of a target it no longer probes: the followers
# apply the same configuration change within a second or so, and a target that
# comes back meanwhile keeps its sequence.
HEALTH_RELEASE_AFTER = 60.0

SHM_DIRECTORY = Path("/dev/shm")


class SharedStateError(Exception):
    """The shared-state file cannot be used (missing, foreign, other layout)."""


def _power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


@dataclass(frozen=True, slots=True)
class Layout:
    """Where everything is in the file, in 64-bit words."""

    rows: int
    count_slots: int = COUNT_SLOTS
    affinity_entries: int = AFFINITY_ENTRIES
    count_probes: int = COUNT_PROBES
    affinity_probes: int = AFFINITY_PROBES
    health_slots: int = HEALTH_SLOTS
    health_probes: int = HEALTH_PROBES

    def __post_init__(self) -> None:
        if self.rows < 1:
            raise ValueError("the shared state needs at least one row")
        if not all(
            _power_of_two(n) for n in (self.count_slots, self.affinity_entries, self.health_slots)
        ):
            raise ValueError("count slots, affinity entries and health slots must be powers of two")
        if not 1 <= self.count_probes <= self.count_slots:
            raise ValueError("count probes must be between 1 and the slots per row")
        if not 1 <= self.affinity_probes <= self.affinity_entries:
            raise ValueError("affinity probes must be between 1 and the entries")
        if not 1 <= self.health_probes <= self.health_slots:
            raise ValueError("health probes must be between 1 and the health slots")

    @property
    def claims_offset(self) -> int:
        """One word per row: how many times a slot of the row was given a key."""
        return HEADER_WORDS

    @property
    def counts_offset(self) -> int:
        return self.claims_offset + self.rows

    @property
    def row_words(self) -> int:
        return self.count_slots * 2

    @property
    def affinity_offset(self) -> int:
        return self.counts_offset + self.rows * self.row_words

    @property
    def health_offset(self) -> int:
        return self.affinity_offset + self.affinity_entries * 4

    @property
    def words(self) -> int:
        return self.health_offset + self.health_slots * 4

    @property
    def size(self) -> int:
        return self.words * WORD

    def header(self) -> list[int]:
        return [
            MAGIC,
            LAYOUT_VERSION,
            self.rows,
            self.count_slots,
            self.affinity_entries,
            self.count_probes,
            self.affinity_probes,
            self.size,
            self.health_slots,
            self.health_probes,
        ]


def _read_layout(path: Path, data: bytes, file_size: int) -> Layout:
    """The layout the header describes; SharedStateError when it is not one this
    seaway can use."""
    if len(data) < HEADER_WORDS * WORD:
        raise SharedStateError(f"shared state {path}: {file_size} bytes, too short for a header")
    header = [
        int.from_bytes(data[i * WORD : (i + 1) * WORD], sys.byteorder) for i in range(HEADER_WORDS)
    ]
    magic, version, rows, slots, entries, count_probes, affinity_probes, size, *health = header
    if magic != MAGIC:
        raise SharedStateError(f"shared state {path}: not a seaway shared-state file (bad magic)")
    if version != LAYOUT_VERSION:
        raise SharedStateError(
            f"shared state {path}: layout version {version}, this seaway reads version "
            f"{LAYOUT_VERSION} (the supervisor and its workers must be the same seaway)"
        )
    try:
        layout = Layout(rows, slots, entries, count_probes, affinity_probes, *health)
    except ValueError as exc:
        raise SharedStateError(f"shared state {path}: invalid sizes in the header: {exc}") from None
    if size != layout.size or file_size != layout.size:
        raise SharedStateError(
            f"shared state {path}: the header says {size} bytes for its sizes "
            f"({layout.size} expected), the file has {file_size}"
        )
    return layout


class SharedRegion:
    """The shared-state file mapped into this process.

    ``create`` (the supervisor) makes and owns the file: leaving the ``with`` block,
    or ``close(remove=True)``, removes it. ``open`` (a worker, a test) maps an
    existing one after checking its header.
    """

    def __init__(
        self, path: Path, mapping: mmap.mmap, layout: Layout, *, owned_directory: Path | None
    ) -> None:
        self.path = path
        self.layout = layout
        self._mmap = mapping
        self.words = (ctypes.c_uint64 * layout.words).from_buffer(mapping)
        self._owned_directory = owned_directory
        self._owner = False

    @classmethod
    def create(
        cls,
        rows: int,
        *,
        directory: Path | None = None,
        count_slots: int = COUNT_SLOTS,
        affinity_entries: int = AFFINITY_ENTRIES,
        count_probes: int = COUNT_PROBES,
        affinity_probes: int = AFFINITY_PROBES,
        health_slots: int = HEALTH_SLOTS,
        health_probes: int = HEALTH_PROBES,
    ) -> SharedRegion:
        """A new, zeroed shared-state file with ``rows`` count rows (one per worker),
        in /dev/shm, or in a private temporary directory when there is none."""
        layout = Layout(
            rows,
            count_slots,
            affinity_entries,
            count_probes,
            affinity_probes,
            health_slots,
            health_probes,
        )
        owned: Path | None = None
        if directory is None:
            if SHM_DIRECTORY.is_dir() and os.access(SHM_DIRECTORY, os.W_OK):
                directory = SHM_DIRECTORY
            else:
                directory = owned = Path(tempfile.mkdtemp(prefix="seaway-state-"))
        path = directory / f"seaway-state-{os.getpid()}-{secrets.token_hex(6)}"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            if owned is not None:
                shutil.rmtree(owned, ignore_errors=True)
            raise
        try:
            # Reserve the memory now: on a full tmpfs a sparse file would fail later,
            # with SIGBUS in a worker, at the first store to an unbacked page.
            try:
                os.posix_fallocate(fd, 0, layout.size)
            except (AttributeError, OSError) as exc:  # macOS; file systems without it
                if isinstance(exc, OSError) and exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                os.ftruncate(fd, layout.size)
            mapping = mmap.mmap(fd, layout.size)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            if owned is not None:
                shutil.rmtree(owned, ignore_errors=True)
            raise
        os.close(fd)
        region = cls(path, mapping, layout, owned_directory=owned)
        region._owner = True
        header = layout.header()
        # The magic last: a header without it is never taken for a complete one.
        for i in range(HEADER_WORDS - 1, -1, -1):
            region.words[i] = header[i]
        return region

    @classmethod
    def open(cls, path: str | Path) -> SharedRegion:
        """Map the shared-state file at ``path``; SharedStateError when it is missing or
        its header does not match this seaway's layout."""
        path = Path(path)
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError as exc:
            raise SharedStateError(
                f"shared state {path}: cannot open: {exc.strerror or exc}"
            ) from None
        try:
            file_size = os.fstat(fd).st_size
            header = os.pread(fd, HEADER_WORDS * WORD, 0)
            layout = _read_layout(path, header, file_size)
            mapping = mmap.mmap(fd, layout.size)
        except OSError as exc:
            raise SharedStateError(f"shared state {path}: cannot map: {exc}") from None
        finally:
            os.close(fd)
        return cls(path, mapping, layout, owned_directory=None)

    def attach(self, index: int) -> WorkerState:
        """This process as worker ``index``: it writes count row ``index`` (cleared
        first: anything there belonged to an earlier process)."""
        if not 0 <= index < self.layout.rows:
            raise SharedStateError(
                f"shared state {self.path}: worker index {index}, the file has "
                f"{self.layout.rows} rows"
            )
        self.clear_row(index)
        return WorkerState(
            RowCounts(self.words, self.layout, index),
            AffinityStore(self.words, self.layout),
            HealthTable(self.words, self.layout),
            index,
        )

    def clear_row(self, index: int) -> None:
        """Zero the counts of worker ``index`` (it died, and its connections with it)."""
        start = self.layout.counts_offset + index * self.layout.row_words
        words = self.words
        # Count before key, slot by slot: a reader that still finds the key reads 0.
        for i in range(start, start + self.layout.row_words, 2):
            words[i + 1] = 0
            words[i] = 0
        # Bumped, never reset: readers that saw a key absent from the row look again.
        claims = self.layout.claims_offset + index
        words[claims] = words[claims] + 1

    def close(self, *, remove: bool | None = None) -> None:
        """Unmap; remove the file too when this process created it (or ``remove``).

        While a ``WorkerState`` from ``attach`` is still referenced, the mapping stays
        until that goes; the file is removed all the same.
        """
        del self.words
        with contextlib.suppress(BufferError):  # views of the mapping still exist
            self._mmap.close()
        if remove if remove is not None else self._owner:
            self.path.unlink(missing_ok=True)
            if self._owned_directory is not None:
                shutil.rmtree(self._owned_directory, ignore_errors=True)

    def __enter__(self) -> SharedRegion:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# What a reader keeps per key: the key, a getter of the words to read (counts, then
# checks), how many counts come first, and the values the checks must have.
_Located = tuple[
    int, Callable[[ctypes.Array[ctypes.c_uint64]], tuple[int, ...]], int, tuple[int, ...]
]


def _same_key(key: int) -> int:
    return key


class RowCounts:
    """``SharedCounts`` for worker ``row``: increments and decrements its own row,
    totals over every row.

    A key lives in the first free slot of its probe sequence (home slot
    ``key % slots``, then the next ones, ``count_probes`` in all). The owner knows
    where its keys are; it reuses a slot whose count is back to zero for a new key,
    and never empties a slot (key 0), so a reader's probe never stops short of a key.
    Each time a slot gets a key, the owner bumps the row's claim counter.

    A reader remembers, per key and row, where it found the key (and checks that
    the slot still holds it), or that the key was absent when the row's claim
    counter had some value (absent still while the counter has not moved): a read
    loads one or two words per row, and probes only when one of them changed. A key
    that finds no slot in the owner's row is counted in this process only (with one
    warning): the other workers do not see it.
    """

    __slots__ = ("_claims", "_mask", "_overflow", "_own", "_probes", "_row", "_row_starts",
                 "_total", "_warned", "_words")  # fmt: skip

    def __init__(self, words: ctypes.Array[ctypes.c_uint64], layout: Layout, row: int) -> None:
        self._words = words
        self._row = row
        self._mask = layout.count_slots - 1
        self._probes = layout.count_probes
        self._row_starts = tuple(
            layout.counts_offset + r * layout.row_words for r in range(layout.rows)
        )
        self._claims = tuple(layout.claims_offset + r for r in range(layout.rows))
        # key -> word index of its slot in this worker's row.
        self._own: dict[int, int] = {}
        # Counts that found no slot in this worker's row.
        self._overflow: dict[int, int] = {}
        self._warned = False
        self._total = self.reader(_same_key)

    def _claim(self, key: int) -> int | None:
        """A slot for a new key in this worker's row: the first empty or zero-count
        slot of its probe sequence; None when the row is full there."""
        words, start, mask = self._words, self._row_starts[self._row], self._mask
        for j in range(self._probes):
            i = start + ((key + j) & mask) * 2
            old = words[i]
            if old == 0 or words[i + 1] == 0:
                if old:
                    self._own.pop(old, None)
                # Key first, then its count: a reader of the old key sees its count
                # (0) or the key change.
                words[i] = key
                claims = self._claims[self._row]
                words[claims] = words[claims] + 1
                return i
        return None

    def increment(self, key: int) -> None:
        i = self._own.get(key)
        if i is None:
            if key not in self._overflow:
                i = self._claim(key)
            if i is None:
                self._overflow[key] = self._overflow.get(key, 0) + 1
                if not self._warned:
                    self._warned = True
                    log.warning(
                        "shared connection counts: this worker's row is full around a key; "
                        "such connections are counted by this worker only (more than %d "
                        "backends with open connections?)",
                        len(self._own),
                    )
                return
            self._own[key] = i
        words = self._words
        words[i + 1] = words[i + 1] + 1

    def decrement(self, key: int) -> None:
        i = self._own.get(key)
        if i is None:
            count = self._overflow.get(key, 0)
            if count > 1:
                self._overflow[key] = count - 1
            else:
                self._overflow.pop(key, None)
            return
        words = self._words
        count = words[i + 1]
        if count > 0:
            words[i + 1] = count - 1

    def reset(self, key: int) -> None:
        self._overflow.pop(key, None)
        i = self._own.get(key)
        if i is not None:
            self._words[i + 1] = 0

    def own(self, key: int) -> int:
        """This worker's count of ``key``."""
        i = self._own.get(key)
        return self._overflow.get(key, 0) if i is None else int(self._words[i + 1])

    def total(self, key: int) -> int:
        return self._total(key, 0)

    def reader(self, key_of: Callable[[N], int]) -> Callable[[N, int], int]:
        """``count_of(name, default)``: the total over every row of ``key_of(name)``.

        The balancers' scans call it once per backend per pick, so it keeps, per
        name, the words to read: in each row the key's count and the key itself
        (still there?), or, where the key is absent, the row's claim counter (still
        unmoved?). One ``itemgetter`` call reads them all; the key is looked for
        again only when a checked word changed.
        """
        words, overflow = self._words, self._overflow
        seen: dict[N, _Located] = {}

        def count_of(name: N, default: int = 0) -> int:
            entry = seen.get(name)
            if entry is None:
                if len(seen) >= MAX_CACHED_POSITIONS:
                    seen.clear()
                entry = seen[name] = self._locate(key_of(name))
            key, read, counted, expected = entry
            # Counts first, then the checks: a key still in its slot after its count
            # was read means that count was the key's.
            values = read(words)
            if values[counted:] != expected:
                key, read, counted, expected = seen[name] = self._locate(key)
                values = read(words)  # a writer racing again only makes one pick approximate
            total: int = sum(values[:counted])
            if overflow:
                total += overflow.get(key, 0)
            return total

        return count_of

    def _locate(self, key: int) -> _Located:
        """Where ``key`` is in each row, as the words a reader reads."""
        counts: list[int] = []
        checks: list[int] = []
        expected: list[int] = []
        for row in range(len(self._row_starts)):
            where = self._find(row, key)
            if where >= 0:
                counts.append(where + 1)
                checks.append(where)
                expected.append(key)
            else:
                checks.append(self._claims[row])
                expected.append(~where)
        # itemgetter returns a bare value for a single index: the magic word pads it.
        checks.append(0)
        expected.append(MAGIC)
        return key, operator.itemgetter(*counts, *checks), len(counts), tuple(expected)

    def _find(self, row: int, key: int) -> int:
        """The word index of ``key`` in ``row``, or ~(the row's claim counter) when it
        is not there."""
        words, start, mask = self._words, self._row_starts[row], self._mask
        # The counter first: a key claimed during the probe moves it, and the next
        # read probes again.
        claims = words[self._claims[row]]
        for j in range(self._probes):
            i = start + ((key + j) & mask) * 2
            found = words[i]
            if found == key:
                return i
            if found == 0:
                break
        return ~claims


class AffinityStore:
    """``SharedAffinity`` over the file's affinity table, shared by every worker.

    An entry lives in one of ``affinity_probes`` slots from its home slot. A writer
    takes the slot that already holds its key, else an empty or invalid one, else
    the least recently seen; then writes key, backend, time and, last, the check
    word. Two workers writing the same slot at once can leave an invalid entry: a
    miss, which the next connection's choice writes over.
    """

    __slots__ = ("_mask", "_probes", "_start", "_words")

    def __init__(self, words: ctypes.Array[ctypes.c_uint64], layout: Layout) -> None:
        self._words = words
        self._start = layout.affinity_offset
        self._mask = layout.affinity_entries - 1
        self._probes = layout.affinity_probes

    def _read(self, i: int) -> tuple[int, int, int] | None:
        """(key, value, last seen) of the entry at word ``i``; None when invalid."""
        words = self._words
        for _ in range(AFFINITY_READ_ATTEMPTS):
            key, value, seen, check = words[i], words[i + 1], words[i + 2], words[i + 3]
            if key ^ value ^ seen == check:
                return key, value, seen
        return None

    def lookup(self, key: int, now: float, timeout: float) -> int | None:
        words, start, mask = self._words, self._start, self._mask
        now_us = int(now * 1_000_000)
        timeout_us = int(timeout * 1_000_000)
        best: int | None = None
        best_seen = -1
        for j in range(self._probes):
            i = start + ((key + j) & mask) * 4
            if words[i] != key:
                continue
            entry = self._read(i)
            if entry is None or entry[0] != key:
                continue
            _, value, seen = entry
            # kube-proxy's recent match: gone after timeoutSeconds without a connection.
            if now_us - seen >= timeout_us or seen <= best_seen:
                continue
            best, best_seen = value, seen
        return best

    def store(self, key: int, value: int, now: float) -> None:
        words, start, mask = self._words, self._start, self._mask
        now_us = int(now * 1_000_000)
        target = -1
        target_rank = (3, 0)  # (preference, last seen): the smallest rank is taken
        for j in range(self._probes):
            i = start + ((key + j) & mask) * 4
            found = words[i]
            if found == key:
                target = i
                break
            if found == 0:
                rank = (0, 0)
            else:
                entry = self._read(i)
                rank = (1, 0) if entry is None else (2, entry[2])
            if target < 0 or rank < target_rank:
                target, target_rank = i, rank
        words[target] = key
        words[target + 1] = value
        words[target + 2] = now_us
        words[target + 3] = key ^ value ^ now_us


@dataclass(frozen=True, slots=True)
class Published:
    """An intact health slot: how many results the target had, and the last 64."""

    sequence: int
    history: int


# What a follower's read of a target's slot found besides an intact, newer slot:
# "same" (the sequence it already applied), "absent" (not published yet, or given
# up), "full" (absent, and its probe sequence has no free slot: worker 0 cannot
# publish it), "torn" (the writer kept changing it while it was read).
SlotStatus = Literal["same", "absent", "full", "torn"]


class HealthTable:
    """The health slots of the file: where a key is, and whether it could be."""

    __slots__ = ("_mask", "_probes", "_start", "_words")

    def __init__(self, words: ctypes.Array[ctypes.c_uint64], layout: Layout) -> None:
        self._words = words
        self._start = layout.health_offset
        self._mask = layout.health_slots - 1
        self._probes = layout.health_probes

    def positions(self, key: int) -> list[int]:
        """The word indexes of the slots ``key`` may live in, home slot first."""
        start, mask = self._start, self._mask
        return [start + ((key + j) & mask) * 4 for j in range(self._probes)]

    def find(self, key: int) -> int:
        """The word index of ``key``'s slot, or -1. Every slot of the probe sequence is
        looked at: worker 0 empties slots it gives up, so a gap ends nothing."""
        words = self._words
        for i in self.positions(key):
            if words[i] == key:
                return i
        return -1

    def full_around(self, key: int) -> bool:
        """Whether every slot of ``key``'s probe sequence holds another key."""
        words = self._words
        return all(words[i] not in (0, key) for i in self.positions(key))

    def occupied(self) -> list[int]:
        """The word index of every slot that holds a key."""
        words, start = self._words, self._start
        return [i for i in range(start, start + (self._mask + 1) * 4, 4) if words[i]]

    def reader(self) -> HealthReader:
        """A follower's reader (it caches where it found each key)."""
        return HealthReader(self._words, self)

    def publisher(self, release_after: float = HEALTH_RELEASE_AFTER) -> HealthPublisher:
        """Worker 0's writer; it reads what the slots hold first (a restarted worker 0
        continues each sequence)."""
        return HealthPublisher(self._words, self, release_after)


class HealthReader:
    """Reads published health slots for one follower."""

    __slots__ = ("_positions", "_table", "_words")

    def __init__(self, words: ctypes.Array[ctypes.c_uint64], table: HealthTable) -> None:
        self._words = words
        self._table = table
        self._positions: dict[int, int] = {}

    def read(self, key: int, since: int | None) -> Published | SlotStatus:
        """The slot of ``key`` when it is intact and its sequence is not ``since``."""
        words = self._words
        i = self._positions.get(key, -1)
        if i < 0 or words[i] != key:
            i = self._table.find(key)
            if i < 0:
                self._positions.pop(key, None)
                return "full" if self._table.full_around(key) else "absent"
            if len(self._positions) >= MAX_CACHED_POSITIONS:
                self._positions.clear()
            self._positions[key] = i
        for _ in range(HEALTH_READ_ATTEMPTS):
            sequence = words[i + 1]
            if sequence == since:
                return "same" if words[i] == key else "absent"
            history, check = words[i + 2], words[i + 3]
            # The key last: a slot given up and taken by another key while it was
            # read is not this key's (the check covers the key the reader expects).
            if words[i] != key:
                return "absent"
            if health_slot_check(key, sequence, history) == check:
                return Published(sequence, history)
        return "torn"

    def forget(self, keep: set[int]) -> None:
        """Drop the cached positions of keys no longer followed."""
        for key in [k for k in self._positions if k not in keep]:
            del self._positions[key]


class HealthPublisher:
    """Worker 0's writer of the health table (the only one: no lock).

    ``publish`` appends one result to a target's slot, taking a free slot of its
    probe sequence the first time; when there is none it logs once and returns
    False (the followers see the sequence full and probe that target themselves).
    ``retain`` says which targets are still probed: the slots of the others are
    emptied ``release_after`` seconds later.
    """

    __slots__ = ("_dropped", "_release_after", "_slots", "_state", "_table", "_warned",
                 "_words")  # fmt: skip

    def __init__(
        self, words: ctypes.Array[ctypes.c_uint64], table: HealthTable, release_after: float
    ) -> None:
        self._words = words
        self._table = table
        self._release_after = release_after
        self._slots: dict[int, int] = {}
        self._state: dict[int, tuple[int, int]] = {}
        self._dropped: dict[int, float] = {}
        self._warned = False
        # What an earlier worker 0 published. A slot it left torn (it died between
        # two stores) is taken as it is: its sequence word is the old or the new
        # one, so the sequence never goes back.
        for i in table.occupied():
            key = words[i]
            self._slots[key] = i
            self._state[key] = (int(words[i + 1]), int(words[i + 2]))

    def sequence(self, key: int) -> int:
        """How many results of ``key`` were published (0: none, or given up)."""
        return self._state.get(key, (0, 0))[0]

    def publish(self, key: int, passed: bool, now: float) -> bool:
        """Append one result of target ``key``; False when the table has no room for it."""
        words = self._words
        i = self._slots.get(key)
        claimed = False
        if i is None:
            i = self._claim(key)
            if i is None:
                if not self._warned:
                    self._warned = True
                    log.warning(
                        "shared health checks: no free slot around a target (%d targets "
                        "published); the other workers probe such targets themselves",
                        len(self._slots),
                    )
                return False
            claimed = True
        sequence, history = record_result(*self._state.get(key, (0, 0)), passed)
        self._state[key] = (sequence, history)
        self._dropped.pop(key, None)
        # Sequence, history, then the check that makes them valid together.
        words[i + 1] = sequence
        words[i + 2] = history
        words[i + 3] = health_slot_check(key, sequence, history)
        if claimed:
            words[i] = key  # last: a reader finds the key only in a complete slot
            self._slots[key] = i
        self._release_expired(now)
        return True

    def retain(self, keys: set[int], now: float) -> None:
        """Targets ``keys`` are probed from now on; the others' slots go after a while."""
        for key in self._slots:
            if key in keys:
                self._dropped.pop(key, None)
            else:
                self._dropped.setdefault(key, now)
        self._release_expired(now)

    def _claim(self, key: int) -> int | None:
        words = self._words
        for i in self._table.positions(key):
            if words[i] == 0:
                return i
        return None

    def _release_expired(self, now: float) -> None:
        if not self._dropped:
            return
        words = self._words
        for key, since in list(self._dropped.items()):
            if now - since < self._release_after:
                continue
            del self._dropped[key]
            self._state.pop(key, None)
            i = self._slots.pop(key)
            # The key first: no reader takes the zeroed words for this key's.
            words[i] = 0
            words[i + 1] = 0
            words[i + 2] = 0
            words[i + 3] = 0


@dataclass(frozen=True, slots=True)
class PlaneState:
    """``seaway.core.sharing.SharedState`` for one data plane of a worker."""

    scope: str
    counts: SharedCounts
    affinity: SharedAffinity


@dataclass(frozen=True, slots=True)
class WorkerState:
    """A worker's view of the shared state: its count row, the affinity table, the
    health table, and which worker it is (worker 0 probes, the others follow)."""

    counts: RowCounts
    affinity: AffinityStore
    health: HealthTable
    index: int

    def plane(self, scope: str) -> PlaneState:
        """The shared state for one data plane (``scope`` keeps planes apart)."""
        return PlaneState(scope, self.counts, self.affinity)


def attach_worker(path: str | Path, index: int) -> WorkerState:
    """Map the file at ``path`` for worker ``index`` for the life of this process."""
    region = SharedRegion.open(path)
    try:
        return region.attach(index)
    except SharedStateError:
        region.close(remove=False)
        raise

"""Manifest files as a source: read into a ClusterState, then watched by polling.

Paths are files or directories; a directory means every ``*.yaml``, ``*.yml`` and
``*.json`` file below it, sorted by path. Names starting with ``.`` are skipped, so
that editor temporaries and the ``..data``/``..2024_...`` entries of a mounted
Kubernetes ConfigMap (which hold the same files again) are not read twice.

Watching polls ``stat()``: it is portable, needs no third-party library, and a
0.2 s interval keeps the time to pick up a change well under a second.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from seaway.model.cluster import ClusterState
from seaway.model.errors import ConfigError, InvalidConfiguration
from seaway.model.parse import ParseResult, Syntax, parse_text
from seaway.model.validate import build_state

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
# Editors and tools write in steps (truncate then write, or write a temporary and
# rename it); after seeing a change, wait until the files stop changing before reading.
SETTLE_SECONDS = 0.075
SETTLE_ROUNDS_MAX = 4

# What stat() says about one path: (mtime_ns, ctime_ns, size, inode), None when absent.
FileStamp = tuple[int, int, int, int] | None
Stamp = dict[str, FileStamp]


def discover_files(paths: Sequence[str]) -> tuple[list[str], list[ConfigError]]:
    """The manifest files that ``paths`` name, in reading order, and missing paths."""
    files: list[str] = []
    errors: list[ConfigError] = []
    seen: set[str] = set()
    for path in paths:
        if os.path.isdir(path):
            found = _walk(path)
        elif os.path.exists(path):
            found = [path]
        else:
            errors.append(ConfigError(path, "", "", "no such file or directory"))
            continue
        for file in found:
            real = os.path.realpath(file)
            if real not in seen:  # named twice (a file and its directory): read once
                seen.add(real)
                files.append(file)
    return files, errors


def _walk(directory: str) -> list[str]:
    found: list[str] = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(
            os.path.join(root, name)
            for name in names
            if not name.startswith(".") and name.endswith(MANIFEST_SUFFIXES)
        )
    return sorted(found)


def read_files(paths: Sequence[str]) -> tuple[dict[str, bytes], list[ConfigError]]:
    """The bytes of every manifest file ``paths`` name, and the paths that failed."""
    files, errors = discover_files(paths)
    explicit = set(paths)
    contents: dict[str, bytes] = {}
    for file in files:
        try:
            with open(file, "rb") as stream:
                contents[file] = stream.read()
        except FileNotFoundError:
            if file in explicit:
                errors.append(ConfigError(file, "", "", "no such file or directory"))
            # else: removed from its directory since the listing; it is gone.
        except OSError as exc:
            errors.append(ConfigError(file, "", "", f"cannot read: {exc.strerror or exc}"))
    return contents, errors


def parse_contents(contents: Mapping[str, bytes]) -> list[ParseResult]:
    """Each file's bytes parsed (UTF-8; JSON for ``*.json``, YAML otherwise)."""
    results: list[ParseResult] = []
    for path, data in contents.items():
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            error = ConfigError(path, "", "", f"not UTF-8 text (byte {exc.start})")
            results.append(ParseResult(errors=(error,)))
            continue
        syntax: Syntax = "json" if path.endswith(".json") else "yaml"
        results.append(parse_text(text, path, syntax=syntax))
    return results


def _build(contents: Mapping[str, bytes], read_errors: list[ConfigError]) -> ClusterState:
    results = parse_contents(contents)
    if read_errors:
        results.insert(0, ParseResult(errors=tuple(read_errors)))
    return build_state(results)


def load_paths(paths: Sequence[str]) -> ClusterState:
    """Read ``paths`` into a ClusterState; ``InvalidConfiguration`` lists every error."""
    contents, errors = read_files(paths)
    return _build(contents, errors)


def validate_paths(paths: Sequence[str]) -> list[ConfigError]:
    """Every error in ``paths`` (empty when they would load), for ``seaway validate``."""
    try:
        load_paths(paths)
    except InvalidConfiguration as exc:
        return list(exc.errors)
    return []


def scan(paths: Sequence[str]) -> Stamp:
    """The stat() picture of ``paths``: one entry per manifest file, None when missing."""
    stamp: Stamp = {}
    files, errors = discover_files(paths)
    for error in errors:
        stamp[error.source] = None
    for file in files:
        try:
            st = os.stat(file)
        except OSError:
            stamp[file] = None
        else:
            stamp[file] = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)
    return stamp


@dataclass(frozen=True, slots=True)
class _Outcome:
    contents: dict[str, bytes]
    state: ClusterState | None
    errors: list[ConfigError]


class FileSource:
    """Manifest files, read into ClusterState snapshots and watched for changes.

    ``load()`` reads once (raising ``InvalidConfiguration``); ``run()`` then polls until
    cancelled. On a change it calls ``on_change`` with the new snapshot, or, when the
    new files are invalid, ``on_error`` with every error, and keeps the previous
    snapshot (the caller goes on serving it). Files whose bytes did not change (a
    touch, or a change undone) report nothing, except that going back to the last
    valid files after an error reports that snapshot again, so the caller can clear
    the error. Callbacks run on the event loop; reading and parsing run in a worker
    thread so that the loop keeps serving.
    """

    def __init__(
        self,
        paths: Sequence[str],
        *,
        on_change: Callable[[ClusterState], None],
        on_error: Callable[[list[ConfigError]], None],
        poll_interval: float = 0.2,
    ) -> None:
        self.paths = tuple(paths)
        self.state: ClusterState | None = None  # the last valid snapshot
        self._on_change = on_change
        self._on_error = on_error
        self._poll_interval = poll_interval
        self._stamp: Stamp | None = None  # stat picture when the files were last read
        self._contents: dict[str, bytes] | None = None  # bytes of the last valid read
        self._failing = False  # the last read was invalid (on_error was called)

    def load(self) -> ClusterState:
        """Read the files now; the snapshot, or ``InvalidConfiguration``."""
        stamp = scan(self.paths)
        contents, errors = read_files(self.paths)
        state = _build(contents, errors)
        self._stamp, self._contents, self.state = stamp, contents, state
        return state

    async def run(self) -> None:
        """Watch the files until cancelled (reads them first if ``load()`` was not called)."""
        if self._stamp is None:
            await self._reload(await asyncio.to_thread(scan, self.paths))
        while True:
            await asyncio.sleep(self._poll_interval)
            stamp = await asyncio.to_thread(scan, self.paths)
            if stamp == self._stamp:
                continue
            for _ in range(SETTLE_ROUNDS_MAX):
                await asyncio.sleep(SETTLE_SECONDS)
                settled = await asyncio.to_thread(scan, self.paths)
                if settled == stamp:
                    break
                stamp = settled
            await self._reload(stamp)

    async def _reload(self, stamp: Stamp) -> None:
        # ``stamp`` was taken before reading: a write racing the read changes the
        # stat picture again and is read on the next poll.
        self._stamp = stamp
        outcome = await asyncio.to_thread(self._read, self._contents)
        if outcome.state is not None:
            self._contents, self.state = outcome.contents, outcome.state
            self._failing = False
            self._on_change(outcome.state)
        elif outcome.errors:
            self._failing = True
            self._on_error(outcome.errors)
        elif self._failing and self.state is not None:
            # Changed back to the last valid files after an error: the snapshot is the
            # one being served, but the caller should hear that the error is over.
            self._failing = False
            self._on_change(self.state)

    def _read(self, last: dict[str, bytes] | None) -> _Outcome:
        contents, errors = read_files(self.paths)
        if not errors and contents == last:
            return _Outcome(contents, None, [])  # touched, or changed and changed back
        try:
            return _Outcome(contents, _build(contents, errors), [])
        except InvalidConfiguration as exc:
            return _Outcome(contents, None, list(exc.errors))

"""Manifest files: reading paths and directories, and watching them with real files."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from seaway.model.cluster import ClusterState
from seaway.model.errors import ConfigError, InvalidConfiguration
from seaway.sources import FileSource, load_paths, validate_paths
from seaway.sources.files import discover_files


def node(name: str) -> str:
    return f"apiVersion: v1\nkind: Node\nmetadata: {{name: {name}}}\n"


def service(name: str, port: int = 80) -> str:
    head = f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\n"
    return f"{head}spec: {{ports: [{{port: {port}}}]}}\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- reading ---------------------------------------------------------------------------


def test_directory_is_read_recursively_in_path_order(tmp_path: Path) -> None:
    write(tmp_path / "b.yaml", node("n-b"))
    write(tmp_path / "a" / "z.yml", node("n-az"))
    write(tmp_path / "c.json", '{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n-c"}}')
    write(tmp_path / "notes.txt", "not a manifest: {")
    write(tmp_path / ".hidden.yaml", "not: [valid")
    # A mounted ConfigMap: the same file again under a hidden timestamped directory.
    write(tmp_path / "..2024_05_01" / "b.yaml", node("n-b"))
    files, errors = discover_files([str(tmp_path)])
    assert errors == []
    assert files == [
        str(tmp_path / "a" / "z.yml"),
        str(tmp_path / "b.yaml"),
        str(tmp_path / "c.json"),
    ]
    state = load_paths([str(tmp_path)])
    assert list(state.nodes) == ["n-az", "n-b", "n-c"]
    assert state.nodes["n-c"].meta.source == f"{tmp_path / 'c.json'}#1"


def test_files_and_directories_mix_and_a_file_named_twice_is_read_once(tmp_path: Path) -> None:
    single = write(tmp_path / "one" / "svc.yaml", service("web"))
    write(tmp_path / "two" / "n.yaml", node("n1"))
    state = load_paths([str(single), str(tmp_path / "two"), str(tmp_path / "one")])
    assert list(state.services) == ["default/web"]
    assert list(state.nodes) == ["n1"]


def test_unknown_kinds_in_files_are_noted(tmp_path: Path) -> None:
    stateful = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: web, namespace: shop}\n"
    path = write(tmp_path / "app.yaml", stateful + "---\n" + service("web"))
    state = load_paths([str(path)])
    assert list(state.services) == ["default/web"]
    assert state.notes == (f"{path}#1: skipped StatefulSet shop/web (apps/v1): not read by seaway",)


def test_errors_from_every_file_are_reported(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n bad: 1\n")
    write(tmp_path / "b.yaml", service("web", port=0))
    (tmp_path / "c.yaml").write_bytes(b"kind: \xff\n")
    missing = tmp_path / "missing.yaml"
    with pytest.raises(InvalidConfiguration) as caught:
        load_paths([str(missing), str(tmp_path)])
    got = [(e.source, e.field, e.message.split(":")[0]) for e in caught.value.errors]
    assert got == [
        (str(missing), "", "no such file or directory"),
        (str(tmp_path / "a.yaml"), "", "invalid YAML at line 5, column 2"),
        (f"{tmp_path / 'b.yaml'}#1", "spec.ports[0].port", "must be between 1 and 65535, got 0"),
        (str(tmp_path / "c.yaml"), "", "not UTF-8 text (byte 6)"),
    ]


def test_duplicate_across_files_in_a_directory(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", service("web"))
    write(tmp_path / "b.yaml", service("web", port=81))
    errors = validate_paths([str(tmp_path)])
    assert [(e.source, e.obj, e.field) for e in errors] == [
        (f"{tmp_path / 'b.yaml'}#1", "Service default/web", "metadata.name")
    ]
    assert f"{tmp_path / 'a.yaml'}#1" in errors[0].message


def test_validate_paths_is_empty_for_valid_input(tmp_path: Path) -> None:
    path = write(tmp_path / "ok.yaml", service("web"))
    assert validate_paths([str(path)]) == []


# -- watching --------------------------------------------------------------------------

WAIT = 1.0  # a change must be picked up within 1 s


class Events:
    """What a FileSource reported, as a queue the test awaits (with a timeout)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[ClusterState | list[ConfigError]] = asyncio.Queue()

    def on_change(self, state: ClusterState) -> None:
        self.queue.put_nowait(state)

    def on_error(self, errors: list[ConfigError]) -> None:
        self.queue.put_nowait(errors)

    async def next(self, within: float = WAIT) -> ClusterState | list[ConfigError]:
        return await asyncio.wait_for(self.queue.get(), within)

    async def change(self, within: float = WAIT) -> ClusterState:
        event = await self.next(within)
        assert isinstance(event, ClusterState), event
        return event

    async def errors(self, within: float = WAIT) -> list[ConfigError]:
        event = await self.next(within)
        assert isinstance(event, list), event
        return event


Watch = Callable[[list[Path]], FileSource]


@pytest.fixture
async def events() -> Events:
    return Events()


@pytest.fixture
async def watch(events: Events) -> AsyncIterator[Watch]:
    """Starts FileSources (after load()) and cancels and awaits them at the end."""
    tasks: list[asyncio.Task[None]] = []

    def start(paths: list[Path]) -> FileSource:
        source = FileSource(
            [str(p) for p in paths], on_change=events.on_change, on_error=events.on_error
        )
        source.load()
        tasks.append(asyncio.create_task(source.run()))
        return source

    yield start
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5.0)


async def test_change_is_applied_within_one_second(
    tmp_path: Path, watch: Watch, events: Events
) -> None:
    path = write(tmp_path / "svc.yaml", service("web"))
    source = watch([path])
    await asyncio.sleep(0.3)  # let the watcher settle into polling
    written = time.monotonic()
    write(path, service("web", port=8080))
    state = await events.change()
    assert time.monotonic() - written < WAIT
    assert state.services["default/web"].ports[0].port == 8080
    assert source.state is state


async def test_invalid_change_keeps_state_then_valid_change_applies(
    tmp_path: Path, watch: Watch, events: Events
) -> None:
    path = write(tmp_path / "svc.yaml", service("web"))
    source = watch([path])
    first = source.state
    write(path, service("web", port=70000))
    errors = await events.errors()
    assert [(e.source, e.obj, e.field) for e in errors] == [
        (f"{path}#1", "Service default/web", "spec.ports[0].port")
    ]
    assert source.state is first
    write(path, service("web", port=81))
    state = await events.change()
    assert state.services["default/web"].ports[0].port == 81


async def test_new_file_in_watched_directory_is_picked_up(
    tmp_path: Path, watch: Watch, events: Events
) -> None:
    write(tmp_path / "a.yaml", node("n1"))
    watch([tmp_path])
    write(tmp_path / "sub" / "b.yaml", node("n2"))
    state = await events.change()
    assert sorted(state.nodes) == ["n1", "n2"]


async def test_deleted_file_in_watched_directory_removes_its_objects(
    tmp_path: Path, watch: Watch, events: Events
) -> None:
    write(tmp_path / "a.yaml", node("n1"))
    gone = write(tmp_path / "b.yaml", node("n2"))
    source = watch([tmp_path])
    assert source.state is not None and sorted(source.state.nodes) == ["n1", "n2"]
    gone.unlink()
    state = await events.change()
    assert list(state.nodes) == ["n1"]


async def test_deleted_named_file_is_an_error_and_its_return_is_picked_up(
    tmp_path: Path, watch: Watch, events: Events
) -> None:
    path = write(tmp_path / "svc.yaml", service("web"))
    watch([path])
    path.unlink()
    errors = await events.errors()
    assert [(e.source, e.message) for e in errors] == [(str(path), "no such file or directory")]
    write(path, service("api"))
    state = await events.change()
    assert list(state.services) == ["default/api"]


async def test_rename_over_the_file_is_picked_up(
    tmp_path: Path, watch: Watch, events: Events
) -> None:
    # How many editors and ConfigMap updates write: a temporary file renamed over it.
    path = write(tmp_path / "svc.yaml", service("web"))
    watch([path])
    temporary = write(tmp_path / ".svc.yaml.tmp", service("web", port=9090))
    os.replace(temporary, path)
    state = await events.change()
    assert state.services["default/web"].ports[0].port == 9090


async def test_same_bytes_rewritten_report_nothing(
    tmp_path: Path, watch: Watch, events: Events
) -> None:
    path = write(tmp_path / "svc.yaml", service("web"))
    watch([path])
    os.utime(path, ns=(1, 1))  # stat changes, bytes do not
    write(path, service("web"))
    with pytest.raises(TimeoutError):
        await events.next(within=0.6)


async def test_undoing_an_invalid_change_reports_the_served_state_again(
    tmp_path: Path, watch: Watch, events: Events
) -> None:
    path = write(tmp_path / "svc.yaml", service("web"))
    source = watch([path])
    first = source.state
    write(path, "kind: [")
    await events.errors()
    write(path, service("web"))
    assert await events.change() is first


async def test_run_without_load_reports_the_first_read(tmp_path: Path, events: Events) -> None:
    path = write(tmp_path / "svc.yaml", service("web"))
    source = FileSource(
        [str(path)], on_change=events.on_change, on_error=events.on_error, poll_interval=0.05
    )
    task = asyncio.create_task(source.run())
    try:
        state = await events.change()
        assert list(state.services) == ["default/web"]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5.0)

"""The difference between two desired configurations, by key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from seaway.core.config import DesiredConfig


@dataclass(frozen=True, slots=True)
class ConfigDiff:
    """Keys added, removed and changed, for listeners and backend sets (sorted)."""

    listeners_added: tuple[str, ...] = ()
    listeners_removed: tuple[str, ...] = ()
    listeners_changed: tuple[str, ...] = ()
    backend_sets_added: tuple[str, ...] = ()
    backend_sets_removed: tuple[str, ...] = ()
    backend_sets_changed: tuple[str, ...] = ()
    settings_changed: bool = False

    @property
    def empty(self) -> bool:
        return not (
            self.listeners_added
            or self.listeners_removed
            or self.listeners_changed
            or self.backend_sets_added
            or self.backend_sets_removed
            or self.backend_sets_changed
            or self.settings_changed
        )


def _compare(
    old: Mapping[str, object], new: Mapping[str, object]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    added = tuple(sorted(k for k in new if k not in old))
    removed = tuple(sorted(k for k in old if k not in new))
    changed = tuple(sorted(k for k in new if k in old and old[k] != new[k]))
    return added, removed, changed


def diff_configs(old: DesiredConfig, new: DesiredConfig) -> ConfigDiff:
    """What a data plane must do to move from ``old`` to ``new``."""
    l_added, l_removed, l_changed = _compare(old.listeners, new.listeners)
    b_added, b_removed, b_changed = _compare(old.backend_sets, new.backend_sets)
    return ConfigDiff(
        listeners_added=l_added,
        listeners_removed=l_removed,
        listeners_changed=l_changed,
        backend_sets_added=b_added,
        backend_sets_removed=b_removed,
        backend_sets_changed=b_changed,
        settings_changed=old.settings != new.settings,
    )

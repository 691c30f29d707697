"""What a scenario found: whether the promise held, and the numbers behind it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Say = Callable[[str], None]


@dataclass
class ScenarioResult:
    """``ok``: the promised outcome held; ``checks``: each promise and whether it held."""

    name: str
    checks: list[tuple[str, bool]] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(passed for _, passed in self.checks)

    def check(self, promise: str, passed: bool, say: Say) -> bool:
        self.checks.append((promise, passed))
        say(f"  [{'ok' if passed else 'FAILED'}] {promise}")
        return passed

    def failed_checks(self) -> list[str]:
        return [promise for promise, passed in self.checks if not passed]

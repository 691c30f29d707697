"""Kubernetes label selectors (``metav1.LabelSelector``): matchLabels and matchExpressions.

Used by a Gateway listener's ``allowedRoutes.namespaces.selector``. Every condition
must hold (AND): each ``matchLabels`` pair, and each requirement of
``matchExpressions`` with the operators the Kubernetes API defines:

- ``In``: the label is present and its value is one of ``values`` (non-empty);
- ``NotIn``: the label is absent, or its value is none of ``values`` (non-empty);
- ``Exists``: the label is present (``values`` empty);
- ``DoesNotExist``: the label is absent (``values`` empty).

An empty selector matches everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

SelectorOperator = Literal["In", "NotIn", "Exists", "DoesNotExist"]
SELECTOR_OPERATORS: tuple[SelectorOperator, ...] = ("In", "NotIn", "Exists", "DoesNotExist")
# The operators that need values; the others must have none.
OPERATORS_WITH_VALUES = frozenset({"In", "NotIn"})


def _empty_map() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class LabelRequirement:
    """One entry of ``matchExpressions``."""

    key: str
    operator: SelectorOperator
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.operator == "In":
            return value is not None and value in self.values
        if self.operator == "NotIn":
            return value is None or value not in self.values
        if self.operator == "Exists":
            return value is not None
        return value is None


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """``matchLabels`` and ``matchExpressions``, all of which must hold."""

    match_labels: Mapping[str, str] = field(default_factory=_empty_map)
    match_expressions: tuple[LabelRequirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels.items()) and all(
            requirement.matches(labels) for requirement in self.match_expressions
        )

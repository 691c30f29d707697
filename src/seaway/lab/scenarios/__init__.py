"""Lab scenarios: each builds a lab, does one thing users hit, and reports what happened.

Each scenario is ``async def run(spec, state_dir, say) -> ScenarioResult``; ``ok`` says
whether the outcome is the one seaway's design promises (``seaway lab run`` exits 0
then).
"""

from __future__ import annotations

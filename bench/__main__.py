"""``python -m bench``: the side-by-side benchmark (see bench.harness)."""

from __future__ import annotations

from bench.harness import main

raise SystemExit(main())

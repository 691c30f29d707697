"""The kernel path: seaway programs nftables so that packets never reach user space.

``rules`` turns a DesiredConfig into tables (pure), ``model`` turns tables into
``nft -f`` transactions (pure), ``plane`` applies them; see docs/kernel.md.
"""

from __future__ import annotations

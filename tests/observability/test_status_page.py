"""The status page in a real browser: headless Chromium (Debian's) driven by Playwright.

Asserts what a person sees, on a real `seaway run` with real backends and traffic:
the Service, its address, its three backends, traffic shares that follow the
traffic, and an error banner that appears and goes away with a bad and a fixed
manifest, all without reloading the page. The screenshot is kept in test-artifacts/.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from seaway.testing.processes import (
    Processes,
    http_get,
    seaway_config,
    service_manifests,
    start_backend,
    start_seaway,
    write_manifests,
)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 8000  # every wait in the browser is bounded by this

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')"
)
if not CHROMIUM.exists():
    pytest.skip(
        "chromium is not installed at /usr/bin/chromium (scripts/test.sh installs it)",
        allow_module_level=True,
    )


def _shares(page: Any) -> dict[str, str]:
    rows = page.locator("tr.backend")
    return {
        rows.nth(i).get_attribute("data-backend"): rows.nth(i).locator(".pct").inner_text()
        for i in range(rows.count())
    }


def test_status_page_shows_services_backends_shares_and_errors_live(
    processes: Processes, tmp_path: Path
) -> None:
    backends = [start_backend(processes, f"pod-{i}") for i in range(3)]
    manifest = tmp_path / "web.yaml"
    good = [seaway_config("127.243.1.0/24"), *service_manifests("web", backends)]
    write_manifests(manifest, good)
    lb = start_seaway(processes, tmp_path, manifest)
    ip = lb.ingress("default/web")
    expect = sync_api.expect

    problems: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 760})
            external: list[str] = []
            own = f"http://{lb.admin}/"

            def on_console(msg: Any) -> None:
                if msg.type == "error":
                    problems.append(f"console: {msg.text}")

            def on_request(request: Any) -> None:
                if not request.url.startswith(own):
                    external.append(request.url)

            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on("console", on_console)
            page.on("request", on_request)
            page.goto(f"http://{lb.admin}/", timeout=WAIT_MS)
            page.evaluate("window.__sameDocument = true")  # gone if the page reloads

            service = page.locator('section.service[data-service="default/web"]')
            expect(service).to_be_visible(timeout=WAIT_MS)
            expect(service.locator(".service-name")).to_have_text("default/web")
            expect(service.locator(".addr")).to_contain_text(f"{ip}:8080")
            rows = service.locator("tr.backend")
            expect(rows).to_have_count(3, timeout=WAIT_MS)
            assert sorted(rows.nth(i).get_attribute("data-backend") for i in range(3)) == [
                "pod-0",
                "pod-1",
                "pod-2",
            ]
            expect(service.locator("tr.backend .usable")).to_have_text(["yes", "yes", "yes"])
            # No traffic yet: no share to show.
            assert set(_shares(page).values()) == {"—"}

            for _ in range(90):
                http_get(ip, 8080)
            page.wait_for_function(
                "() => [...document.querySelectorAll('tr.backend .pct')]"
                ".every((e) => e.textContent.endsWith('%'))",
                timeout=WAIT_MS,
            )
            shares = {k: int(v.rstrip("%")) for k, v in _shares(page).items()}
            assert 98 <= sum(shares.values()) <= 102, shares
            assert min(shares.values()) >= 10, shares  # Maglev spreads 90 connections
            totals = [int(t) for t in service.locator("tr.backend .total").all_inner_texts()]
            assert sum(totals) == 90

            # A bad edit: the banner appears on its own, naming the object and the field.
            bad = [
                seaway_config("127.243.1.0/24"),
                *service_manifests("web", backends, port=70000),
            ]
            write_manifests(manifest, bad)
            banner = page.locator("#error-banner")
            expect(banner).to_be_visible(timeout=WAIT_MS)
            expect(banner).to_contain_text("Service default/web")
            expect(banner).to_contain_text("spec.ports[0].port")
            expect(banner).to_contain_text(re.compile("still serving configuration 1"))
            # The last good configuration keeps being shown below the banner.
            expect(rows).to_have_count(3)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "status-page.png"), full_page=True)

            write_manifests(manifest, good)
            expect(banner).to_be_hidden(timeout=WAIT_MS)
            expect(page.locator("#meta")).to_contain_text("configuration 2", timeout=WAIT_MS)
            assert page.evaluate("window.__sameDocument") is True
            assert external == []
        finally:
            browser.close()
    assert problems == []

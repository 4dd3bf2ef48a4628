"""One headless Chromium page for the consoles' browser tests, on Debian's chromium.

The flags keep Chromium off the network this machine does not have (its background
services would otherwise be refused at every start). Waits in these tests go through
locators (expect), not wait_for_function: Playwright evaluates a function's text with
eval while polling, which the consoles' CSP rightly refuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextmanager
def chromium_page(timeout_ms: int) -> Iterator[Any]:
    """A fresh page in a fresh browser; every wait (actions and expect) given `timeout_ms`."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.set_default_timeout(timeout_ms)
            expect.set_options(timeout=timeout_ms)
            yield context.new_page()
        finally:
            browser.close()

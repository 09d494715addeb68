"""Shared test setup. Unit tests run the Faust app in this process, its tables in RocksDB
under a temporary folder (the store workers use); integration tests start real workers."""
import os
import tempfile
from pathlib import Path

import pytest

# Must happen before tracker.settings is imported. Workers started by integration tests
# get their own environment.
os.environ.setdefault("TRACKER_STORE", "rocksdb://")


def pytest_configure(config):
    from tracker.app import app

    app.conf.datadir = tempfile.mkdtemp(prefix="tracker-unit-")


def pytest_terminal_summary(terminalreporter):
    from tests.integration.conftest import FIGURES

    if FIGURES:
        terminalreporter.section("figures")
        for name, value in FIGURES:
            terminalreporter.write_line(f"{name:<48} {value}")


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium, driven by Playwright."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is needed for the browser tests (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield browser
        browser.close()

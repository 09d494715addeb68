"""Shared test setup. Unit tests run the Faust app in memory; integration tests start real workers."""
import os

# Must happen before tracker.settings is imported: agents under test_context() keep their
# tables in memory. Workers started by integration tests get their own environment.
os.environ.setdefault("TRACKER_STORE", "memory://")


def pytest_terminal_summary(terminalreporter):
    from tests.integration.conftest import FIGURES

    if FIGURES:
        terminalreporter.section("figures")
        for name, value in FIGURES:
            terminalreporter.write_line(f"{name:<48} {value}")

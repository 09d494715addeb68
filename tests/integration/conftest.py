import pytest

from tracker.testing import Stack

FIGURES: list[tuple[str, str]] = []


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack.create(tmp_path_factory.mktemp("stack"))
    yield stack
    stack.close()


@pytest.fixture(scope="session")
def figures():
    """Measurements a test wants printed at the end of the run (never asserted on)."""
    return FIGURES

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


@pytest.fixture(scope="module")
def receiver():
    """A webhook receiver on the loopback that answers 2xx on every path (a module may define
    its own, with failing paths)."""
    from tests.integration.test_webhooks import WebhookReceiver

    receiver = WebhookReceiver({}, set()).start()
    yield receiver
    receiver.stop()

import os
import uuid

import psycopg
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


@pytest.fixture
def database():
    """A new, empty database of its own (dropped afterwards): its URL."""
    admin_url = os.environ.get("TRACKER_DATABASE_URL")
    if not admin_url:
        pytest.fail('integration tests need the real services: `eval "$(scripts/services env)"` first')
    name = "it" + uuid.uuid4().hex[:10]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield psycopg.conninfo.make_conninfo(admin_url, dbname=name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


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

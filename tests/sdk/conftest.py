"""Fixtures for the SDK compatibility suite.

The suite talks to an already running hookd: `HOOKD_URL` is its base URL and
`HOOKD_TOKEN` an admin token. `crates/hookd/tests/sdk_python.rs` starts a fresh
server and sets both; to run the suite by hand, start `hookd serve` yourself
(with `HOOKD_ALLOWED_NETWORKS=127.0.0.0/8`, so that it may deliver to the
suite's loopback receiver) and export them.
"""

import os

import httpx
import pytest
from svix.api import Svix, SvixOptions

from helpers import Receiver, new_app, new_event_type


def _required_env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise pytest.UsageError(
            f"{name} is not set. The suite needs a running hookd: run "
            "`scripts/test -p hookd --test sdk_python`, which starts one, or set "
            "HOOKD_URL and HOOKD_TOKEN yourself."
        )
    return value


@pytest.fixture(scope="session")
def server_url() -> str:
    return _required_env("HOOKD_URL").rstrip("/")


@pytest.fixture(scope="session")
def admin_token() -> str:
    return _required_env("HOOKD_TOKEN")


@pytest.fixture(scope="session")
def make_client(server_url):
    """Builds an SDK client for any token, pointed at the server under test."""

    def build(token: str) -> Svix:
        return Svix(token, SvixOptions(server_url=server_url))

    return build


@pytest.fixture(scope="session")
def svix(make_client, admin_token) -> Svix:
    """The SDK client as an operator uses it: with the admin token."""
    return make_client(admin_token)


@pytest.fixture(scope="session")
def raw(server_url, admin_token):
    """Plain HTTP with the admin token, for what the SDK hides (status codes)."""
    with httpx.Client(
        base_url=server_url,
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=15.0,
    ) as client:
        yield client


@pytest.fixture(scope="session")
def receiver():
    """A webhook receiver on 127.0.0.1 that records what hookd delivers."""
    rx = Receiver()
    yield rx
    rx.close()


@pytest.fixture
def app(svix):
    """A fresh application of the test's own."""
    return new_app(svix)


@pytest.fixture(scope="module")
def event_types(svix):
    """Two event types endpoints can filter on."""
    return new_event_type(svix, "user.created"), new_event_type(svix, "user.deleted")

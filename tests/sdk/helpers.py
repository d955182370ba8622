"""Helpers shared by the SDK compatibility tests: unique names, id and error
assertions, pagination walking, and a loopback webhook receiver."""

import datetime as dt
import http.server
import re
import threading
import time
import uuid
from dataclasses import dataclass

import pytest
from svix.api import ApplicationIn, EndpointIn, EventTypeIn, MessageStatus
from svix.exceptions import HttpError, HTTPValidationError

ID_PATTERNS = {
    "app": re.compile(r"app_[0-9A-Za-z]{27}"),
    "ep": re.compile(r"ep_[0-9A-Za-z]{27}"),
    "msg": re.compile(r"msg_[0-9A-Za-z]{27}"),
    "atmpt": re.compile(r"atmpt_[0-9A-Za-z]{27}"),
}

# Nothing listens at `dead_url`s, so a delivery there can be waiting, in flight
# or failed, but never succeed.
UNDELIVERED = (MessageStatus.PENDING, MessageStatus.SENDING, MessageStatus.FAIL)

SCHEMAS = {
    "1": {
        "title": "Invoice paid",
        "type": "object",
        "properties": {"id": {"type": "string"}, "amount": {"type": "integer"}},
        "required": ["id"],
        "examples": [{"id": "inv_1", "amount": 1200}],
    }
}

PAYLOAD = {"amount": 12.5, "name": "Zoë ✓", "nested": {"list": [1, 2, {"x": None}], "ok": True}}


def unique(kind: str) -> str:
    """A uid no other test uses (letters, digits and '-' only)."""
    return f"sdk-{kind}-{uuid.uuid4().hex[:12]}"


def unique_event_type(kind: str) -> str:
    return f"sdk.{kind}.{uuid.uuid4().hex[:12]}"


def dead_url(name: str) -> str:
    """A loopback URL where nothing listens: deliveries there fail, and no test
    ever sends anything to another host."""
    return f"http://127.0.0.1:9/sdk/{name}"


def zero_id(kind: str) -> str:
    """A well-formed id that names nothing."""
    return f"{kind}_" + "0" * 27


def assert_id(kind: str, value: str) -> None:
    assert ID_PATTERNS[kind].fullmatch(value), f"{value!r} is not a {kind} id"


def assert_recent(ts: dt.datetime) -> None:
    """A timestamp the server just produced: timezone-aware and close to now."""
    assert ts.tzinfo is not None, f"{ts!r} has no timezone"
    age = (dt.datetime.now(dt.timezone.utc) - ts).total_seconds()
    assert -60 < age < 600, f"{ts.isoformat()} is not close to now"


def expect_http_error(status: int, code: str, call, *args, **kwargs) -> HttpError:
    """Calls the SDK and checks it raised `HttpError` with this status and code."""
    with pytest.raises(HttpError) as info:
        call(*args, **kwargs)
    err = info.value
    assert (err.status_code, err.code) == (status, code), str(err)
    assert isinstance(err.detail, str) and err.detail
    return err


def expect_validation_error(loc: list, call, *args, **kwargs) -> HTTPValidationError:
    """Calls the SDK and checks it raised a 422 naming exactly one field, `loc`."""
    with pytest.raises(HTTPValidationError) as info:
        call(*args, **kwargs)
    err = info.value
    assert err.status_code == 422
    assert [e.loc for e in err.detail] == [loc], err.to_dict()
    assert all(e.msg and e.type for e in err.detail)
    return err


def new_app(svix, **fields):
    name = fields.pop("name", "SDK test app")
    return svix.application.create(ApplicationIn(name=name, uid=unique("app"), **fields))


def new_event_type(svix, kind: str = "evt", **fields) -> str:
    name = unique_event_type(kind)
    description = fields.pop("description", f"{kind} happened")
    svix.event_type.create(EventTypeIn(name=name, description=description, **fields))
    return name


def new_endpoint(svix, app_id: str, **fields):
    uid = fields.pop("uid", None) or unique("ep")
    return svix.endpoint.create(app_id, EndpointIn(url=fields.pop("url", dead_url(uid)), uid=uid, **fields))


def walk_pages(fetch, limit: int, max_pages: int = 500) -> list:
    """Follows `iterator` from the first page until `done`; returns the pages.
    `fetch(limit, iterator)` reads one page."""
    pages, iterator = [], None
    for _ in range(max_pages):
        page = fetch(limit, iterator)
        assert len(page.data) <= limit
        pages.append(page)
        if page.done:
            return pages
        assert len(page.data) == limit, "a page that is not the last must be full"
        assert page.iterator, "a page that is not the last must carry an iterator"
        iterator = page.iterator
    pytest.fail(f"still not done after {max_pages} pages")


def ids(items) -> list:
    return [item.id for item in items]


def newest_first(id_list) -> list:
    """The order of a newest-first listing. Ids sort by creation time only down to
    the KSUID's 4 ms tick (ties are random, as in Svix), so this sorts by id
    instead of trusting the order in which the test created things."""
    return sorted(id_list, reverse=True)


def wait_until(what: str, probe, timeout: float = 20.0, interval: float = 0.05):
    """Calls `probe` until it returns something truthy, for at most `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Delivery:
    """One request the receiver got."""

    path: str
    headers: dict  # lower-cased names
    body: bytes


class Receiver:
    """A webhook receiver on 127.0.0.1: records every POST and answers with the
    status set for its path (200 unless told otherwise)."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._got: list = []
        self._status: dict = {}
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                delivery = Delivery(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with receiver._lock:
                    receiver._got.append(delivery)
                    status = receiver._status.get(self.path, 200)
                    receiver._lock.notify_all()
                reply = b'{"ok":true}' if status < 400 else b'{"ok":false}'
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, name: str, status: int = 200) -> str:
        """A fresh URL on this receiver that answers `status`."""
        path = f"/sdk/{name}"
        with self._lock:
            self._status[path] = status
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def wait_for(self, url: str, count: int = 1, timeout: float = 20.0) -> list:
        """The first `count` requests to `url`, waiting up to `timeout` seconds."""
        path = "/" + url.split("/", 3)[3]
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                got = [d for d in self._got if d.path == path]
                if len(got) >= count:
                    return got[:count]
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"{url} got {len(got)} of {count} deliveries within {timeout}s")
                self._lock.wait(left)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

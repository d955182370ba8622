"""svix.endpoint against hookd (svix-api.md §4 endpoint, §5 secrets and headers)."""

import base64
import datetime as dt
import os

import pytest
from helpers import (
    assert_id,
    assert_recent,
    dead_url,
    expect_http_error,
    expect_validation_error,
    ids,
    new_endpoint,
    newest_first,
    unique,
    wait_until,
    walk_pages,
    zero_id,
)
from svix.api import (
    EndpointGetStatsOptions,
    EndpointHeadersIn,
    EndpointHeadersPatchIn,
    EndpointIn,
    EndpointListOptions,
    EndpointPatch,
    EndpointSecretRotateIn,
    EndpointUpsertIn,
    MessageIn,
    Ordering,
)


def lowered(headers: dict) -> dict:
    return {k.lower(): v for k, v in headers.items()}


def test_endpoint_create_returns_every_field(svix, app, event_types):
    uid = unique("ep")
    ep = svix.endpoint.create(
        app.id,
        EndpointIn(
            url=dead_url(uid),
            uid=uid,
            description="billing hooks",
            event_types=[event_types[0]],
            channels=["project-1"],
            metadata={"team": "billing"},
            headers={"X-Team": "billing"},
            throttle_rate=10,
        ),
    )
    assert_id("ep", ep.id)
    assert (ep.uid, ep.url, ep.description) == (uid, dead_url(uid), "billing hooks")
    assert (ep.event_types, ep.channels, ep.metadata) == ([event_types[0]], ["project-1"], {"team": "billing"})
    assert (ep.throttle_rate, ep.disabled) == (10, False)
    assert_recent(ep.created_at)
    expect_http_error(409, "conflict", svix.endpoint.create, app.id, EndpointIn(url=dead_url(uid), uid=uid))


def test_endpoint_get_by_id_and_by_uid(svix, app):
    ep = new_endpoint(svix, app.id, description="lookup")
    assert svix.endpoint.get(app.id, ep.id) == ep
    assert svix.endpoint.get(app.uid, ep.uid) == ep
    expect_http_error(404, "not_found", svix.endpoint.get, app.id, zero_id("ep"))


def test_endpoint_list_pages_newest_first(svix, app):
    created = [new_endpoint(svix, app.id).id for _ in range(5)]
    order = newest_first(created)

    pages = walk_pages(lambda limit, it: svix.endpoint.list(app.id, EndpointListOptions(limit=limit, iterator=it)), 2)
    assert [ids(p.data) for p in pages] == [order[0:2], order[2:4], order[4:]]

    back = svix.endpoint.list(app.id, EndpointListOptions(limit=2, iterator=pages[-1].prev_iterator))
    assert ids(back.data) == order[2:4]

    ascending = svix.endpoint.list(app.id, EndpointListOptions(order=Ordering.ASCENDING))
    assert (ids(ascending.data), ascending.done) == (sorted(created), True)


def test_endpoint_upsert_creates_a_new_endpoint_under_the_path_uid(svix, raw, app):
    uid = unique("ep")
    created = svix.endpoint.upsert(app.id, uid, EndpointUpsertIn(url=dead_url(uid), description="made by PUT"))
    assert_id("ep", created.id)
    assert (created.uid, created.url, created.description) == (uid, dead_url(uid), "made by PUT")
    assert svix.endpoint.get(app.uid, uid) == created

    fresh = unique("ep")
    assert raw.put(f"/api/v1/app/{app.id}/endpoint/{fresh}", json={"url": dead_url(fresh)}).status_code == 201


def test_endpoint_upsert_updates_an_existing_endpoint(svix, raw, app, event_types):
    ep = new_endpoint(svix, app.id, description="before")
    secret = svix.endpoint.get_secret(app.id, ep.id).key

    new_url = dead_url("moved")
    updated = svix.endpoint.upsert(
        app.id, ep.uid, EndpointUpsertIn(url=new_url, description="after", event_types=[event_types[1]])
    )
    assert (updated.id, updated.uid, updated.url) == (ep.id, ep.uid, new_url)
    assert (updated.description, updated.event_types) == ("after", [event_types[1]])
    assert updated.created_at == ep.created_at
    assert svix.endpoint.get_secret(app.id, ep.id).key == secret, "PUT keeps the signing secret"
    assert raw.put(f"/api/v1/app/{app.id}/endpoint/{ep.id}", json={"url": new_url}).status_code == 200


def test_endpoint_patch_changes_only_the_given_fields(svix, app, event_types):
    ep = new_endpoint(svix, app.id, description="live", channels=["c1"], event_types=[event_types[0]])
    paused = svix.endpoint.patch(app.id, ep.id, EndpointPatch(disabled=True, description="paused"))
    assert (paused.disabled, paused.description) == (True, "paused")
    assert (paused.url, paused.channels, paused.event_types) == (ep.url, ["c1"], [event_types[0]])

    widened = svix.endpoint.patch(app.id, ep.uid, EndpointPatch(channels=None, event_types=list(event_types)))
    assert (widened.channels, widened.event_types, widened.disabled) == (None, list(event_types), True)
    assert svix.endpoint.get(app.id, ep.id) == widened


def test_endpoint_delete_removes_the_endpoint(svix, app):
    ep = new_endpoint(svix, app.id)
    assert svix.endpoint.delete(app.id, ep.id) is None
    expect_http_error(404, "not_found", svix.endpoint.get, app.id, ep.id)
    expect_http_error(404, "not_found", svix.endpoint.delete, app.id, ep.uid)


def test_endpoint_get_secret_returns_a_whsec_key_or_the_one_given(svix, app):
    ep = new_endpoint(svix, app.id)
    key = svix.endpoint.get_secret(app.id, ep.id).key
    assert key.startswith("whsec_")
    assert 24 <= len(base64.b64decode(key.removeprefix("whsec_"))) <= 75
    assert svix.endpoint.get_secret(app.uid, ep.uid).key == key

    own = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    with_secret = svix.endpoint.create(app.id, EndpointIn(url=dead_url("own"), secret=own))
    assert svix.endpoint.get_secret(app.id, with_secret.id).key == own


def test_endpoint_rotate_secret_replaces_the_key(svix, app):
    ep = new_endpoint(svix, app.id)
    first = svix.endpoint.get_secret(app.id, ep.id).key
    rotated = svix.endpoint.rotate_secret(app.id, ep.id, EndpointSecretRotateIn())
    assert rotated.key.startswith("whsec_") and rotated.key != first
    assert svix.endpoint.get_secret(app.id, ep.uid).key == rotated.key

    chosen = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    assert svix.endpoint.rotate_secret(app.id, ep.id, EndpointSecretRotateIn(key=chosen)).key == chosen
    assert svix.endpoint.get_secret(app.id, ep.id).key == chosen


def test_endpoint_rotate_secret_past_ten_old_keys_is_limit_reached(svix, app):
    ep = new_endpoint(svix, app.id)
    for _ in range(10):
        svix.endpoint.rotate_secret(app.id, ep.id, EndpointSecretRotateIn())
    expect_http_error(400, "limit_reached", svix.endpoint.rotate_secret, app.id, ep.id, EndpointSecretRotateIn())


def test_endpoint_rotate_secret_names_the_bad_key_field(svix, app):
    ep = new_endpoint(svix, app.id)
    expect_validation_error(
        ["body", "key"], svix.endpoint.rotate_secret, app.id, ep.id, EndpointSecretRotateIn(key="whsec_short")
    )


def test_endpoint_get_headers_never_shows_sensitive_values(svix, app):
    ep = new_endpoint(svix, app.id, headers={"X-Trace": "abc", "Authorization": "Bearer hunter2-secret"})
    got = svix.endpoint.get_headers(app.id, ep.id)
    assert lowered(got.headers) == {"x-trace": "abc"}
    assert [s.lower() for s in got.sensitive] == ["authorization"]
    assert "hunter2" not in got.model_dump_json()
    assert svix.endpoint.get_headers(app.uid, ep.uid) == got

    expect_validation_error(
        ["body", "headers", "Content-Type"],
        svix.endpoint.create,
        app.id,
        EndpointIn(url=dead_url("bad-header"), headers={"Content-Type": "text/plain"}),
    )


def test_endpoint_set_and_patch_headers_replace_and_merge(svix, app):
    ep = new_endpoint(svix, app.id, headers={"X-Trace": "abc", "Authorization": "Bearer hunter2-secret"})
    assert svix.endpoint.set_headers(app.id, ep.id, EndpointHeadersIn(headers={"X-Only": "1"})) is None
    got = svix.endpoint.get_headers(app.id, ep.uid)
    assert (lowered(got.headers), got.sensitive) == ({"x-only": "1"}, [])

    patch = EndpointHeadersPatchIn(headers={"X-Added": "2", "X-Api-Key": "k-secret"}, delete_headers=["X-Only"])
    assert svix.endpoint.patch_headers(app.id, ep.id, patch) is None
    got = svix.endpoint.get_headers(app.id, ep.id)
    assert lowered(got.headers) == {"x-added": "2"}
    assert [s.lower() for s in got.sensitive] == ["x-api-key"]
    assert "k-secret" not in got.model_dump_json()


def test_endpoint_set_headers_refuses_a_reserved_header(svix, app):
    ep = new_endpoint(svix, app.id)
    expect_validation_error(
        ["body", "headers", "Content-Type"],
        svix.endpoint.set_headers,
        app.id,
        ep.id,
        EndpointHeadersIn(headers={"Content-Type": "text/plain"}),
    )


def test_endpoint_stats_count_the_deliveries_of_the_endpoint(svix, app):
    ep = new_endpoint(svix, app.id)
    zero = svix.endpoint.get_stats(app.id, ep.id)
    assert (zero.success, zero.pending, zero.sending, zero.fail, zero.canceled) == (0, 0, 0, 0, 0)

    for _ in range(2):
        svix.message.create(app.id, MessageIn(event_type="stats.counted", payload={}))
    def both_counted():
        # A message is fanned out into deliveries just after its 202.
        s = svix.endpoint.get_stats(app.id, ep.uid)
        return s if s.pending + s.sending + s.success + s.fail + s.canceled == 2 else None

    stats = wait_until("both deliveries counted", both_counted)
    assert stats.success == stats.canceled == 0, "nothing listens at the endpoint's URL"

    now = dt.datetime.now(dt.timezone.utc)
    around_now = EndpointGetStatsOptions(since=now - dt.timedelta(hours=1), until=now + dt.timedelta(hours=1))
    in_window = svix.endpoint.get_stats(app.id, ep.id, around_now)
    assert in_window.pending + in_window.sending + in_window.fail == 2
    yesterday = EndpointGetStatsOptions(since=now - dt.timedelta(days=2), until=now - dt.timedelta(days=1))
    past = svix.endpoint.get_stats(app.id, ep.id, yesterday)
    assert (past.success, past.pending, past.sending, past.fail, past.canceled) == (0, 0, 0, 0, 0)

"""svix.application and svix.health against hookd (svix-api.md §4 application)."""

import uuid

from helpers import assert_id, assert_recent, expect_http_error, ids, new_app, unique, walk_pages
from svix.api import ApplicationCreateOptions, ApplicationIn, ApplicationListOptions, ApplicationPatch, Ordering


def test_health_get_succeeds_with_no_body(svix, raw):
    assert svix.health.get() is None
    assert raw.get("/api/v1/health").status_code == 204


def test_application_create_returns_every_field(svix):
    uid = unique("app")
    app = svix.application.create(
        ApplicationIn(name="Acme Corp", uid=uid, metadata={"tier": "gold"}, throttle_rate=50)
    )
    assert_id("app", app.id)
    assert (app.uid, app.name, app.metadata, app.throttle_rate) == (uid, "Acme Corp", {"tier": "gold"}, 50)
    assert_recent(app.created_at)
    assert app.updated_at >= app.created_at


def test_application_get_or_create_returns_the_existing_app(svix, raw):
    uid = unique("app")
    first = svix.application.get_or_create(ApplicationIn(name="First", uid=uid))
    second = svix.application.get_or_create(ApplicationIn(name="Second", uid=uid))
    assert second.id == first.id
    assert second.name == "First", "an existing app is returned as it is, the body is ignored"

    resp = raw.post("/api/v1/app", params={"get_if_exists": "true"}, json={"name": "Third", "uid": uid})
    assert resp.status_code == 200 and resp.json()["id"] == first.id
    resp = raw.post("/api/v1/app", params={"get_if_exists": "true"}, json={"name": "New", "uid": unique("app")})
    assert resp.status_code == 201


def test_application_get_by_id_and_by_uid(svix):
    app = new_app(svix, metadata={"k": "v"})
    assert svix.application.get(app.id) == app
    assert svix.application.get(app.uid) == app


def test_application_create_with_a_taken_uid_is_a_conflict(svix):
    app = new_app(svix)
    expect_http_error(409, "conflict", svix.application.create, ApplicationIn(name="Again", uid=app.uid))


def test_application_create_replays_the_response_for_a_repeated_idempotency_key(svix):
    body = ApplicationIn(name="Idempotent", uid=unique("app"))
    key = f"sdk-idem-{uuid.uuid4()}"
    first = svix.application.create(body, ApplicationCreateOptions(idempotency_key=key))
    again = svix.application.create(body, ApplicationCreateOptions(idempotency_key=key))
    assert again == first


def test_application_list_pages_forward_and_backward_over_every_app(svix):
    mine = [new_app(svix, name=f"Paged {i}").id for i in range(7)]

    def fetch(limit, iterator):
        return svix.application.list(ApplicationListOptions(limit=limit, iterator=iterator))

    pages = walk_pages(fetch, limit=3)
    seen = [app_id for page in pages for app_id in ids(page.data)]
    assert len(seen) == len(set(seen)), "an app was listed twice"
    assert set(mine) <= set(seen)
    assert seen == sorted(seen), "apps are listed oldest first by default"
    for page in pages:
        if page.data:
            assert page.iterator == page.data[-1].id
            assert page.prev_iterator == "-" + page.data[0].id

    # From the last page, `prevIterator` leads back through the same pages.
    backward, iterator = [], pages[-1].prev_iterator
    for _ in range(len(pages)):
        page = fetch(3, iterator)
        backward.append(ids(page.data))
        if page.done:
            break
        iterator = page.prev_iterator
    assert backward == [ids(p.data) for p in reversed(pages[:-1])]

    descending = svix.application.list(ApplicationListOptions(limit=250, order=Ordering.DESCENDING))
    if descending.done:
        assert ids(descending.data) == list(reversed(seen))


def test_application_upsert_creates_then_updates(svix, raw):
    uid = unique("app")
    created = svix.application.upsert(uid, ApplicationIn(name="Made by PUT"))
    assert_id("app", created.id)
    assert (created.uid, created.name) == (uid, "Made by PUT")

    updated = svix.application.upsert(uid, ApplicationIn(name="Renamed by PUT", metadata={"k": "v"}))
    assert updated.id == created.id
    assert (updated.name, updated.metadata) == ("Renamed by PUT", {"k": "v"})
    assert updated.created_at == created.created_at
    assert updated.updated_at >= created.updated_at

    by_id = svix.application.upsert(created.id, ApplicationIn(name="Renamed by id"))
    assert (by_id.id, by_id.uid, by_id.name) == (created.id, uid, "Renamed by id")
    assert svix.application.get(uid).name == "Renamed by id"

    fresh = unique("app")
    assert raw.put(f"/api/v1/app/{fresh}", json={"name": "x"}).status_code == 201
    assert raw.put(f"/api/v1/app/{fresh}", json={"name": "y"}).status_code == 200


def test_application_patch_changes_only_the_given_fields(svix):
    app = new_app(svix, name="Before", metadata={"a": "1"}, throttle_rate=10)
    renamed = svix.application.patch(app.id, ApplicationPatch(name="After"))
    assert (renamed.name, renamed.uid, renamed.metadata, renamed.throttle_rate) == ("After", app.uid, {"a": "1"}, 10)

    retagged = svix.application.patch(app.uid, ApplicationPatch(metadata={"b": "2"}))
    assert (retagged.name, retagged.metadata) == ("After", {"b": "2"})

    unthrottled = svix.application.patch(app.id, ApplicationPatch(throttle_rate=None))
    assert unthrottled.throttle_rate is None, "an explicit null clears the field"
    assert svix.application.get(app.id) == unthrottled


def test_application_delete_removes_the_app_and_frees_its_uid(svix, raw):
    app = new_app(svix)
    assert svix.application.delete(app.id) is None
    expect_http_error(404, "not_found", svix.application.get, app.id)
    expect_http_error(404, "not_found", svix.application.get, app.uid)
    expect_http_error(404, "not_found", svix.application.delete, app.id)

    reborn = svix.application.create(ApplicationIn(name="Same uid again", uid=app.uid))
    assert reborn.id != app.id

    other = new_app(svix)
    assert raw.delete(f"/api/v1/app/{other.uid}").status_code == 204

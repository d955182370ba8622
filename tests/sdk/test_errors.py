"""How hookd's errors reach SDK users: the exception class, `status_code` and
`code` (svix-api.md §0 and §3)."""

import json
import uuid

import pytest
from helpers import dead_url, expect_http_error, expect_validation_error, unique, unique_event_type, wait_until, zero_id
from svix.api import (
    ApplicationIn,
    ApplicationListOptions,
    BulkExpungeContentsIn,
    EndpointIn,
    EventTypeIn,
    MessageGetOptions,
    MessageIn,
)


def test_a_wrong_token_is_unauthorized(make_client):
    wrong = make_client("not-a-real-token-" + uuid.uuid4().hex)
    expect_http_error(401, "authentication_failed", wrong.application.list)
    expect_http_error(401, "authentication_failed", wrong.event_type.list)
    expect_http_error(401, "authentication_failed", wrong.message.list, zero_id("app"))


def test_unknown_ids_are_not_found(svix, app):
    expect_http_error(404, "not_found", svix.application.get, zero_id("app"))
    expect_http_error(404, "not_found", svix.application.get, unique("app"))
    expect_http_error(404, "not_found", svix.event_type.get, unique_event_type("missing"))
    expect_http_error(404, "not_found", svix.message.get, app.id, zero_id("msg"))
    expect_http_error(404, "not_found", svix.message.get, app.id, unique("evt"))


def test_invalid_input_is_a_422_naming_the_field(svix, app):
    expect_validation_error(["body", "url"], svix.endpoint.create, app.id, EndpointIn(url="not a url"))
    err = expect_validation_error(["body", "uid"], svix.application.create, ApplicationIn(name="x", uid="app_bad"))
    assert "same prefix" in err.detail[0].msg
    expect_validation_error(["body", "uid"], svix.endpoint.create, app.id, EndpointIn(url=dead_url("x"), uid="ep_bad"))
    expect_validation_error(
        ["body", "eventId"], svix.message.create, app.id, MessageIn(event_id="msg_bad", event_type="x", payload={})
    )
    unknown_type = EndpointIn(url=dead_url("x"), event_types=[unique_event_type("nope")])
    expect_validation_error(["body", "eventTypes", "0"], svix.endpoint.create, app.id, unknown_type)
    expect_validation_error(["query", "limit"], svix.application.list, ApplicationListOptions(limit=251))
    expect_validation_error(["body", "name"], svix.event_type.create, EventTypeIn(name="has space", description="d"))


def test_a_body_over_the_size_limit_is_payload_too_large(svix, app):
    huge = {"blob": "x" * (2 * 1024 * 1024 + 1)}
    expect_http_error(413, "payload_too_large", svix.message.create, app.id, MessageIn(event_type="big", payload=huge))


def test_bulk_expunge_and_expunge_all_contents_drop_payloads(svix, app):
    kept = svix.message.create(app.id, MessageIn(event_type="bulk.x", payload={"keep": 1}))
    first = svix.message.create(app.id, MessageIn(event_type="bulk.x", payload={"drop": 1}))
    missing = zero_id("msg")
    out = svix.message.bulk_expunge_content(app.id, BulkExpungeContentsIn(ids=[first.id, missing]))
    assert {k: v.value for k, v in out.results.items()} == {first.id: "expunged", missing: "not-found"}
    assert svix.message.get(app.id, first.id, MessageGetOptions(with_content=True)).payload == {"expired": True}
    assert svix.message.get(app.id, kept.id, MessageGetOptions(with_content=True)).payload == {"keep": 1}
    task = svix.message.expunge_all_contents(app.id)
    assert task.task.value == "application.purge_content"
    wait_until(
        "every payload expunged",
        lambda: svix.message.get(app.id, kept.id, MessageGetOptions(with_content=True)).payload == {"expired": True},
    )


def test_unserved_routes_and_methods_answer_json_errors(raw, app):
    resp = raw.delete("/api/v1/health")
    assert resp.status_code == 405
    assert resp.json()["code"] == "method_not_allowed"
    resp = raw.get(f"/api/v1/app/{app.id}/endpoint/{zero_id('ep')}/attempt-stats")
    assert resp.status_code == 501
    assert resp.json()["code"] == "not_implemented"


def test_error_bodies_are_json_in_the_svix_shape(raw):
    resp = raw.get(f"/api/v1/app/{zero_id('app')}")
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/json")
    assert set(json.loads(resp.text)) == {"code", "detail"}

    resp = raw.post("/api/v1/app", content=b"{not json", headers={"content-type": "application/json"})
    assert resp.status_code == 422
    (detail,) = resp.json()["detail"]
    assert (detail["loc"][0], detail["type"]) == ("body", "value_error.jsondecode")

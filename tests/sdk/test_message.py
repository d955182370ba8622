"""svix.message against hookd (svix-api.md §4 message, §5 expired payloads)."""

import datetime as dt

import pytest
from helpers import (
    PAYLOAD,
    assert_id,
    assert_recent,
    expect_http_error,
    ids,
    new_app,
    new_endpoint,
    newest_first,
    unique,
    walk_pages,
)
from svix.api import (
    ApplicationIn,
    MessageCreateOptions,
    MessageGetOptions,
    MessageIn,
    MessageListOptions,
    MessagePrecheckIn,
)

WITH_CONTENT = MessageGetOptions(with_content=True)


def test_message_create_and_get_by_id_and_by_event_id(svix, raw, app):
    event_id = unique("evt")
    msg = svix.message.create(
        app.id, MessageIn(event_id=event_id, event_type="invoice.paid", payload=PAYLOAD, channels=["c1"], tags=["t1"])
    )
    assert_id("msg", msg.id)
    assert (msg.event_id, msg.event_type, msg.channels, msg.tags) == (event_id, "invoice.paid", ["c1"], ["t1"])
    assert msg.payload == {}, "the SDK asks for with_content=false"
    assert_recent(msg.timestamp)

    assert svix.message.get(app.id, msg.id, WITH_CONTENT).payload == PAYLOAD
    by_event_id = svix.message.get(app.uid, event_id, WITH_CONTENT)
    assert (by_event_id.id, by_event_id.payload) == (msg.id, PAYLOAD)
    assert svix.message.get(app.id, msg.id) == msg

    echoed = svix.message.create(
        app.id, MessageIn(event_type="invoice.paid", payload=PAYLOAD), MessageCreateOptions(with_content=True)
    )
    assert (echoed.payload, echoed.event_id) == (PAYLOAD, None)

    resp = raw.post(f"/api/v1/app/{app.id}/msg", json={"eventType": "raw.sent", "payload": {"a": 1}})
    assert resp.status_code == 202 and resp.json()["payload"] == {"a": 1}


def test_message_with_a_used_event_id_is_a_conflict(svix, app):
    event_id = unique("evt")
    svix.message.create(app.id, MessageIn(event_id=event_id, event_type="dup.test", payload={"n": 1}))
    again = MessageIn(event_id=event_id, event_type="dup.test", payload={})
    expect_http_error(409, "conflict", svix.message.create, app.id, again)
    assert [m.event_id for m in svix.message.list(app.id).data] == [event_id]


def test_message_create_makes_the_app_from_the_application_field(svix):
    uid = unique("app")
    spec = ApplicationIn(name="Made on the fly", uid=uid)
    msg = svix.message.create(uid, MessageIn(event_type="auto.app", payload={}, application=spec))
    app = svix.application.get(uid)
    assert app.name == "Made on the fly"
    assert svix.message.get(app.id, msg.id).id == msg.id


def test_message_create_for_a_missing_app_is_not_found(svix):
    expect_http_error(404, "not_found", svix.message.create, unique("app"), MessageIn(event_type="x", payload={}))


def test_message_create_keeps_deliver_at(svix, app):
    when = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)).replace(microsecond=0)
    msg = svix.message.create(app.id, MessageIn(event_type="later.please", payload={}, deliver_at=when))
    assert msg.deliver_at == when


def test_message_list_filters_and_pages_newest_first(svix, app):
    a, b = "list.kind.a", "list.kind.b"
    sent = [
        svix.message.create(app.id, MessageIn(event_type=a, payload={"i": 0}, channels=["ch-1"], tags=["t-1"])),
        svix.message.create(app.id, MessageIn(event_type=b, payload={"i": 1}, channels=["ch-2"])),
        svix.message.create(app.id, MessageIn(event_type=a, payload={"i": 2}, channels=["ch-2"], tags=["t-1"])),
        svix.message.create(app.id, MessageIn(event_type=b, payload={"i": 3})),
        svix.message.create(app.id, MessageIn(event_type=a, payload={"i": 4})),
    ]
    m = ids(sent)
    everything = newest_first(m)

    def listed(**opts):
        return ids(svix.message.list(app.id, MessageListOptions(**opts)).data)

    assert listed() == everything
    assert listed(event_types=[a]) == newest_first([m[0], m[2], m[4]])
    assert listed(event_types=[a, b]) == everything
    assert listed(channel="ch-2") == newest_first([m[1], m[2]])
    assert listed(tag="t-1") == newest_first([m[0], m[2]])

    hour = dt.timedelta(hours=1)
    now = dt.datetime.now(dt.timezone.utc)
    assert listed(after=now - hour) == everything
    assert listed(before=now - hour) == []
    naive_later = now.replace(tzinfo=None) + hour
    assert listed(before=naive_later) == everything, "the SDK sends naive datetimes without an offset; they are UTC"

    pages = walk_pages(lambda limit, it: svix.message.list(app.id, MessageListOptions(limit=limit, iterator=it)), 2)
    assert [ids(p.data) for p in pages] == [everything[0:2], everything[2:4], everything[4:]]

    with_content = svix.message.list(app.id, MessageListOptions(with_content=True, event_types=[b]))
    assert {msg.id: msg.payload for msg in with_content.data} == {m[1]: {"i": 1}, m[3]: {"i": 3}}


def test_message_expunge_content_drops_the_payload(svix, app):
    msg = svix.message.create(app.id, MessageIn(event_id=unique("evt"), event_type="secret.sent", payload=PAYLOAD))
    assert svix.message.expunge_content(app.id, msg.id) is None
    assert svix.message.get(app.id, msg.id, WITH_CONTENT).payload == {"expired": True}
    assert svix.message.get(app.id, msg.event_id, WITH_CONTENT).event_type == "secret.sent"
    listed = svix.message.list(app.id, MessageListOptions(with_content=True))
    assert [x.payload for x in listed.data] == [{"expired": True}]
    expect_http_error(404, "not_found", svix.message.expunge_content, app.id, unique("evt"))


def test_message_precheck_reports_whether_an_endpoint_would_receive_it(svix, event_types):
    app = new_app(svix)
    wanted, other = event_types

    def active(app_key, event_type, channels=None) -> bool:
        return svix.message.precheck(app_key, MessagePrecheckIn(event_type=event_type, channels=channels)).active

    assert active(app.id, wanted) is False, "no endpoints yet"
    new_endpoint(svix, app.id, event_types=[wanted], channels=["ch-1"], disabled=True)
    assert active(app.id, wanted, ["ch-1"]) is False, "a disabled endpoint receives nothing"

    new_endpoint(svix, app.id, event_types=[wanted], channels=["ch-1"])
    assert active(app.id, wanted, ["ch-1"]) is True
    assert active(app.uid, wanted, ["ch-2"]) is False
    assert active(app.id, other, ["ch-1"]) is False
    expect_http_error(404, "not_found", svix.message.precheck, unique("app"), MessagePrecheckIn(event_type=wanted))

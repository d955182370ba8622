"""svix.message_attempt against hookd, and what hookd actually delivers
(svix-api.md §4 message_attempt). Deliveries go to the suite's loopback
receiver, so the server under test must allow 127.0.0.0/8."""

import datetime as dt
import json

import pytest
import standardwebhooks
from helpers import (
    PAYLOAD,
    UNDELIVERED,
    assert_id,
    assert_recent,
    expect_http_error,
    ids,
    new_app,
    new_endpoint,
    unique,
    wait_until,
    zero_id,
)
from svix.api import (
    EndpointIn,
    EndpointSecretRotateIn,
    MessageAttemptListAttemptedDestinationsOptions,
    MessageAttemptListAttemptedMessagesOptions,
    MessageAttemptListByEndpointOptions,
    MessageAttemptListByMsgOptions,
    MessageAttemptTriggerType,
    MessageIn,
    MessageStatus,
    MessageStatusText,
    StatusCodeClass,
)
from svix.webhooks import Webhook, WebhookVerificationError


def consistent(status: MessageStatus, text: MessageStatusText) -> bool:
    return text.value == status.name.lower()


def test_message_attempt_listings_show_where_a_message_is_going(svix, event_types):
    wanted, other = event_types
    app = new_app(svix)
    to_all = new_endpoint(svix, app.id, description="everything")
    to_wanted = new_endpoint(svix, app.id, event_types=[wanted])
    to_other = new_endpoint(svix, app.id, event_types=[other])
    msg = svix.message.create(app.id, MessageIn(event_id=unique("evt"), event_type=wanted, payload={"n": 1}))

    def fanned_out():
        # A message is fanned out into deliveries just after its 202.
        d = svix.message_attempt.list_attempted_destinations(app.id, msg.id)
        return d if len(d.data) == 2 else None

    destinations = wait_until("the message's fan-out", fanned_out)
    assert ids(destinations.data) == sorted([to_all.id, to_wanted.id]), "ascending by endpoint id"
    assert destinations.done is True
    for dest in destinations.data:
        assert dest.status in UNDELIVERED and consistent(dest.status, dest.status_text)
    by_id = {d.id: d for d in destinations.data}
    assert (by_id[to_wanted.id].url, by_id[to_wanted.id].event_types) == (to_wanted.url, [wanted])
    assert by_id[to_all.id].description == "everything"
    first_only = MessageAttemptListAttemptedDestinationsOptions(limit=1)
    by_event_id = svix.message_attempt.list_attempted_destinations(app.uid, msg.event_id, first_only)
    assert (ids(by_event_id.data), by_event_id.done) == ([min(by_id)], False)

    attempted = svix.message_attempt.list_attempted_messages(app.id, to_wanted.id)
    assert ids(attempted.data) == [msg.id]
    entry = attempted.data[0]
    assert (entry.event_id, entry.event_type, entry.payload) == (msg.event_id, wanted, {})
    assert entry.status in UNDELIVERED and consistent(entry.status, entry.status_text)
    with_content = svix.message_attempt.list_attempted_messages(
        app.id, to_wanted.uid, MessageAttemptListAttemptedMessagesOptions(with_content=True)
    )
    assert with_content.data[0].payload == {"n": 1}
    delivered = MessageAttemptListAttemptedMessagesOptions(status=MessageStatus.SUCCESS)
    assert svix.message_attempt.list_attempted_messages(app.id, to_wanted.id, delivered).data == []
    assert svix.message_attempt.list_attempted_messages(app.id, to_other.id).data == []

    # Attempts appear once the dispatcher has tried; any there are must belong to
    # this message and the endpoint asked about, and none can have succeeded.
    by_endpoint = svix.message_attempt.list_by_endpoint(app.id, to_wanted.id)
    by_msg = svix.message_attempt.list_by_msg(app.id, msg.id, MessageAttemptListByMsgOptions(endpoint_id=to_all.id))
    for listing, endpoint in ((by_endpoint, to_wanted), (by_msg, to_all)):
        assert listing.done is True
        for attempt in listing.data:
            assert (attempt.msg_id, attempt.endpoint_id) == (msg.id, endpoint.id)
            assert attempt.status != MessageStatus.SUCCESS
    assert svix.message_attempt.list_by_endpoint(app.id, to_other.id).data == []

    missing = zero_id("atmpt")
    expect_http_error(404, "not_found", svix.message_attempt.get, app.id, msg.id, missing)
    expect_http_error(404, "not_found", svix.message_attempt.expunge_content, app.id, msg.id, missing)
    expect_http_error(404, "not_found", svix.message_attempt.list_by_msg, app.id, zero_id("msg"))
    expect_http_error(404, "not_found", svix.message_attempt.list_by_endpoint, app.id, zero_id("ep"))


def test_a_delivered_message_is_signed_and_its_attempt_recorded(svix, receiver):
    app = new_app(svix)
    url = receiver.url(unique("ok"))
    ep = svix.endpoint.create(app.id, EndpointIn(url=url, uid=unique("ep"), headers={"X-Tenant": "t-1"}))
    secret = svix.endpoint.get_secret(app.id, ep.id).key
    msg = svix.message.create(app.id, MessageIn(event_id=unique("evt"), event_type="order.paid", payload=PAYLOAD))

    (request,) = receiver.wait_for(url)
    sent_bytes = json.dumps(PAYLOAD, separators=(",", ":"), ensure_ascii=False).encode()
    assert request.body == sent_bytes, "the payload is delivered byte for byte as the SDK sent it"
    assert (request.headers.get("webhook-id") or request.headers.get("svix-id")) == msg.id
    assert request.headers["x-tenant"] == "t-1"
    Webhook(secret).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(request.body + b" ", request.headers)
    if "webhook-id" in request.headers:
        assert standardwebhooks.Webhook(secret).verify(request.body, request.headers) == PAYLOAD

    def succeeded():
        return [a for a in svix.message_attempt.list_by_msg(app.id, msg.id).data if a.status == MessageStatus.SUCCESS]

    (attempt,) = wait_until("the successful attempt to be recorded", succeeded)
    assert_id("atmpt", attempt.id)
    assert (attempt.msg_id, attempt.endpoint_id, attempt.url) == (msg.id, ep.id, url)
    assert (attempt.response_status_code, attempt.status_text) == (200, MessageStatusText.SUCCESS)
    assert attempt.trigger_type == MessageAttemptTriggerType.SCHEDULED
    assert attempt.response == "{}", "the SDK asks for with_content=false"
    assert attempt.response_duration_ms >= 0
    assert_recent(attempt.timestamp)

    got = svix.message_attempt.get(app.id, msg.event_id, attempt.id)
    assert (got.id, got.status, got.response) == (attempt.id, MessageStatus.SUCCESS, '{"ok":true}')
    full = svix.message_attempt.list_by_msg(app.id, msg.id, MessageAttemptListByMsgOptions(with_content=True))
    assert [a.response for a in full.data] == ['{"ok":true}']

    def by_endpoint(**opts):
        return svix.message_attempt.list_by_endpoint(app.id, ep.uid, MessageAttemptListByEndpointOptions(**opts)).data

    with_msg = by_endpoint(with_msg=True)
    assert ids(with_msg) == [attempt.id] and (with_msg[0].msg.id, with_msg[0].msg.event_type) == (msg.id, "order.paid")
    assert ids(by_endpoint(status=MessageStatus.SUCCESS)) == [attempt.id]
    assert by_endpoint(status=MessageStatus.FAIL) == []
    assert ids(by_endpoint(status_code_class=StatusCodeClass.CODE2XX)) == [attempt.id]
    assert by_endpoint(status_code_class=StatusCodeClass.CODE5XX) == []
    assert by_endpoint(event_types=["other.type"]) == []

    (dest,) = svix.message_attempt.list_attempted_destinations(app.id, msg.id).data
    assert (dest.id, dest.status, dest.next_attempt) == (ep.id, MessageStatus.SUCCESS, None)
    (sent,) = svix.message_attempt.list_attempted_messages(app.id, ep.id).data
    assert (sent.id, sent.status, sent.status_text) == (msg.id, MessageStatus.SUCCESS, MessageStatusText.SUCCESS)
    assert svix.endpoint.get_stats(app.id, ep.id).success == 1

    assert svix.message_attempt.expunge_content(app.id, msg.id, attempt.id) is None
    assert "ok" not in svix.message_attempt.get(app.id, msg.id, attempt.id).response


def test_a_failed_delivery_is_recorded_and_scheduled_again(svix, receiver):
    app = new_app(svix)
    url = receiver.url(unique("fail"), status=500)
    ep = svix.endpoint.create(app.id, EndpointIn(url=url))
    msg = svix.message.create(app.id, MessageIn(event_type="order.failed", payload={"n": 2}))
    receiver.wait_for(url)

    (attempt,) = wait_until(
        "the failed attempt to be recorded", lambda: svix.message_attempt.list_by_endpoint(app.id, ep.id).data
    )
    assert (attempt.msg_id, attempt.status, attempt.response_status_code) == (msg.id, MessageStatus.FAIL, 500)
    assert attempt.status_text == MessageStatusText.FAIL
    server_errors = MessageAttemptListByEndpointOptions(status_code_class=StatusCodeClass.CODE5XX)
    assert ids(svix.message_attempt.list_by_endpoint(app.id, ep.id, server_errors).data) == [attempt.id]

    (dest,) = svix.message_attempt.list_attempted_destinations(app.id, msg.id).data
    assert dest.status == MessageStatus.PENDING, "a failed attempt with retries left keeps the delivery pending"
    assert dest.next_attempt is not None and dest.next_attempt > attempt.timestamp
    assert svix.endpoint.get_stats(app.id, ep.id).pending == 1


def test_after_rotation_deliveries_are_signed_with_new_and_old_secrets(svix, receiver):
    app = new_app(svix)
    url = receiver.url(unique("rotated"))
    ep = svix.endpoint.create(app.id, EndpointIn(url=url))
    old = svix.endpoint.get_secret(app.id, ep.id).key
    new = svix.endpoint.rotate_secret(app.id, ep.id, EndpointSecretRotateIn(grace_period_seconds=3600)).key

    svix.message.create(app.id, MessageIn(event_type="after.rotation", payload={"n": 3}))
    (request,) = receiver.wait_for(url)
    signatures = (request.headers.get("webhook-signature") or request.headers["svix-signature"]).split()
    msg_id = request.headers.get("webhook-id") or request.headers["svix-id"]
    sent_at = int(request.headers.get("webhook-timestamp") or request.headers["svix-timestamp"])
    sent_at = dt.datetime.fromtimestamp(sent_at, tz=dt.timezone.utc)
    expected = [Webhook(key).sign(msg_id, sent_at, request.body.decode()) for key in (new, old)]
    assert signatures == expected, "one v1 signature per valid key, the current key first"
    Webhook(new).verify(request.body, request.headers)
    Webhook(old).verify(request.body, request.headers)

    newest = svix.endpoint.rotate_secret(app.id, ep.id, EndpointSecretRotateIn(grace_period_seconds=0)).key
    svix.message.create(app.id, MessageIn(event_type="after.rotation", payload={"n": 4}))
    request = receiver.wait_for(url, count=2)[1]
    Webhook(newest).verify(request.body, request.headers)
    Webhook(old).verify(request.body, request.headers)  # its grace period still runs
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(request.body, request.headers)  # rotated out with no grace

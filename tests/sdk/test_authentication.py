"""svix.authentication against hookd: app-portal tokens, their scope and their
end (svix-api.md §4 authentication, §5 app portal)."""

import pytest
from helpers import expect_http_error, ids, new_app, new_endpoint, unique
from svix.api import ApplicationIn, ApplicationTokenExpireIn, AppPortalAccessIn


def portal_client(svix, make_client, app_key: str, **access):
    return make_client(svix.authentication.app_portal_access(app_key, AppPortalAccessIn(**access)).token)


def test_app_portal_token_is_limited_to_its_application(svix, make_client):
    app, other = new_app(svix), new_app(svix)
    ep = new_endpoint(svix, app.id)
    access = svix.authentication.app_portal_access(app.id, AppPortalAccessIn())
    assert access.token and access.url.startswith(("http://", "https://"))

    portal = make_client(access.token)
    assert portal.application.get(app.id) == app
    assert portal.application.get(app.uid).id == app.id
    assert ids(portal.endpoint.list(app.id).data) == [ep.id]
    assert portal.endpoint.get_secret(app.id, ep.id).key.startswith("whsec_")

    expect_http_error(403, "insufficient_access", portal.application.get, other.id)
    expect_http_error(403, "insufficient_access", portal.endpoint.list, other.uid)
    expect_http_error(403, "insufficient_access", portal.application.list)
    expect_http_error(403, "insufficient_access", portal.application.create, ApplicationIn(name="nope"))
    expect_http_error(
        403, "insufficient_access", portal.authentication.app_portal_access, other.id, AppPortalAccessIn()
    )


def test_app_portal_access_can_create_the_application(svix, make_client):
    uid = unique("app")
    portal = portal_client(svix, make_client, uid, application=ApplicationIn(name="Portal made", uid=uid), expiry=3600)
    app = svix.application.get(uid)
    assert app.name == "Portal made"
    assert portal.application.get(uid).id == app.id
    expect_http_error(404, "not_found", svix.authentication.app_portal_access, unique("app"), AppPortalAccessIn())


def test_expire_all_revokes_the_application_tokens(svix, make_client):
    app, other_app = new_app(svix), new_app(svix)
    portal = portal_client(svix, make_client, app.id)
    untouched = portal_client(svix, make_client, other_app.id)

    assert svix.authentication.expire_all(app.id, ApplicationTokenExpireIn(expiry=600)) is None
    assert portal.application.get(app.id).id == app.id, "expiry=600 leaves the token ten more minutes"

    assert svix.authentication.expire_all(app.uid, ApplicationTokenExpireIn()) is None
    expect_http_error(401, "authentication_failed", portal.application.get, app.id)
    assert untouched.application.get(other_app.id).id == other_app.id
    assert svix.application.get(app.id).id == app.id, "the admin token is not affected"


def test_logout_ends_the_app_portal_session(svix, make_client):
    app = new_app(svix)
    portal = portal_client(svix, make_client, app.id)
    assert portal.application.get(app.id).id == app.id
    assert portal.authentication.logout() is None
    expect_http_error(401, "authentication_failed", portal.application.get, app.id)


def test_dashboard_access_of_the_1x_sdks_returns_a_working_token(svix, raw, make_client):
    app = new_app(svix)
    resp = raw.post(f"/api/v1/auth/dashboard-access/{app.id}")
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) >= {"url", "token"}
    assert make_client(body["token"]).application.get(app.id).id == app.id

"""svix.event_type against hookd (svix-api.md §4 event_type)."""

import pytest
from helpers import SCHEMAS, assert_recent, expect_http_error, new_event_type, unique_event_type, walk_pages
from svix.api import EventTypeDeleteOptions, EventTypeIn, EventTypeListOptions, EventTypePatch, EventTypeUpsertIn


def listed_names(svix, **opts) -> dict:
    """Every event type the list call returns with these options, by name."""
    pages = walk_pages(
        lambda limit, it: svix.event_type.list(EventTypeListOptions(limit=limit, iterator=it, **opts)), limit=2
    )
    return {et.name: et for page in pages for et in page.data}


def test_event_type_create_and_get_keep_schemas_with_examples(svix, raw):
    name = unique_event_type("invoice.paid")
    created = svix.event_type.create(
        EventTypeIn(name=name, description="An invoice was paid", schemas=SCHEMAS, group_name="invoice")
    )
    assert (created.name, created.description, created.schemas) == (name, "An invoice was paid", SCHEMAS)
    assert (created.archived, created.deprecated, created.group_name) == (False, False, "invoice")
    assert_recent(created.created_at)
    assert svix.event_type.get(name) == created

    expect_http_error(409, "conflict", svix.event_type.create, EventTypeIn(name=name, description="again"))
    resp = raw.post("/api/v1/event-type", json={"name": unique_event_type("raw"), "description": "d"})
    assert resp.status_code == 201


def test_event_type_list_leaves_out_schemas_and_archived_types_unless_asked(svix):
    live = new_event_type(svix, "listed", schemas=SCHEMAS)
    archived = new_event_type(svix, "listed", archived=True)

    default = listed_names(svix)
    assert live in default and archived not in default
    assert default[live].schemas is None, "the SDK sends with_content=false by default"
    assert list(default) == sorted(default), "event types are listed by name"

    assert listed_names(svix, with_content=True)[live].schemas == SCHEMAS

    everything = listed_names(svix, include_archived=True)
    assert (everything[archived].archived, everything[live].archived) == (True, False)


def test_event_type_upsert_creates_then_updates(svix, raw):
    name = unique_event_type("upserted")
    created = svix.event_type.upsert(name, EventTypeUpsertIn(description="v1", schemas=SCHEMAS))
    assert (created.name, created.description, created.schemas) == (name, "v1", SCHEMAS)
    updated = svix.event_type.upsert(name, EventTypeUpsertIn(description="v2", deprecated=True))
    assert (updated.description, updated.deprecated) == ("v2", True)
    assert updated.created_at == created.created_at
    assert svix.event_type.get(name) == updated

    fresh = unique_event_type("raw")
    assert raw.put(f"/api/v1/event-type/{fresh}", json={"description": "a"}).status_code == 201
    assert raw.put(f"/api/v1/event-type/{fresh}", json={"description": "b"}).status_code == 200


def test_event_type_patch_sets_the_deprecated_and_archived_flags(svix):
    name = new_event_type(svix, "patched", schemas=SCHEMAS)
    deprecated = svix.event_type.patch(name, EventTypePatch(deprecated=True))
    assert (deprecated.deprecated, deprecated.archived, deprecated.schemas) == (True, False, SCHEMAS)
    archived = svix.event_type.patch(name, EventTypePatch(archived=True, description="gone"))
    assert (archived.deprecated, archived.archived, archived.description) == (True, True, "gone")
    restored = svix.event_type.patch(name, EventTypePatch(archived=False))
    assert restored.archived is False
    assert svix.event_type.get(name) == restored


def test_event_type_delete_archives_and_expunge_removes(svix):
    name = new_event_type(svix, "deleted")
    assert svix.event_type.delete(name) is None
    assert svix.event_type.get(name).archived is True
    assert name not in listed_names(svix)

    assert svix.event_type.delete(name, EventTypeDeleteOptions(expunge=True)) is None
    expect_http_error(404, "not_found", svix.event_type.get, name)
    expect_http_error(404, "not_found", svix.event_type.delete, name)


def test_event_type_create_unarchives_an_archived_type(svix):
    name = new_event_type(svix, "revived", description="old")
    svix.event_type.delete(name)
    revived = svix.event_type.create(EventTypeIn(name=name, description="new"))
    assert (revived.archived, revived.description) == (False, "new")

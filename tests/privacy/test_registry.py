"""Every table that holds profile data has an erasure step and an export step (or a stated reason not to)."""

import pytest
from django.apps import apps

from profiles.privacy_registry import models_holding_profile_data, registry, uncovered_models


def test_every_model_holding_profile_data_has_an_erasure_and_an_export_step():
    assert uncovered_models() == {"erasure": [], "export": []}, (
        "Register the model's steps in its app's ready() (profiles.privacy_registry.register_erasure_step / "
        "register_export_step), or declare it exempt with the reason."
    )


def test_the_walk_finds_the_tables_we_know_hold_profile_data():
    holding = set(models_holding_profile_data())
    assert {
        "profiles.Profile",
        "profiles.Identifier",
        "profiles.Event",
        "profiles.Transaction",
        "profiles.ProfileTag",
        "profiles.MergeRecord",
        "consents.ConsentState",
        "consents.ConsentRecord",
        "crm.Job",
        "crm.IdempotencyRecord",
    } <= holding


def test_a_new_table_without_steps_fails_the_check(monkeypatch):
    monkeypatch.setitem(registry.erasure, "tags", registry.erasure["tags"].__class__("tags", lambda ctx: 0, ()))
    monkeypatch.delitem(registry.export, "tags")
    assert uncovered_models() == {"erasure": ["profiles.ProfileTag"], "export": ["profiles.ProfileTag"]}


@pytest.mark.parametrize("kind", ["erasure", "export"])
def test_steps_name_models_that_exist(kind):
    covered = registry.erasure_covered() if kind == "erasure" else registry.export_covered()
    for label in covered:
        assert apps.get_model(label) is not None

"""The erasure and export step registries: every table that holds profile data plugs into both, or a test fails.

Like ``profiles.merge_registry``: an app registers its steps in ``AppConfig.ready()`` and names the models
each step covers. the registry's completeness test walks every model of every app and fails for one that
relates to a profile (a foreign key to ``Profile``, a ``client_id`` column, a JSON or binary column that can
hold copies of personal data) and is covered by no step and not declared exempt with a reason::

    from profiles.privacy_registry import register_erasure_step, register_export_step

    def memberships_erase(ctx):            # ctx: ErasureContext; runs inside the erasure's transaction
        return SegmentMembership.objects.filter(profile_id__in=ctx.client_ids).delete()[0]   # rows touched

    def memberships_export(ctx):           # ctx: ExportContext; returns JSON-able data
        return [{"segment": m.segment.name, "since": m.created_at} for m in ...]

    register_erasure_step("segment memberships", erase=memberships_erase, models=["segments.SegmentMembership"])
    register_export_step("segments", export=memberships_export, models=["segments.SegmentMembership"])
    register_erasure_exempt("segments.Segment", "segment definitions hold no profile data")

Erasure steps run in ``order`` (lower first) before the profile row is deleted (order 1000); export steps
write their data under their name in the portability document.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from profiles.models import Profile


@dataclass
class ErasureContext:
    """What an erasure step needs: the locked profile, every clientId that named it, and the identifier values
    whose copies (in job payloads, stored answers, other timelines) must go too."""

    profile: Any  # Profile, locked
    client_ids: list[int]  # the profile's clientId and every clientId merged into it
    identifiers: list[tuple[str, str]]  # (kind, normalised value) it holds or held through merged-in profiles
    source: str
    actor: str
    erasure: Any  # privacy.models.Erasure, saved

    @property
    def values(self) -> list[str]:
        return sorted({value for _, value in self.identifiers})


@dataclass
class ExportContext:
    profile: Any  # Profile
    client_ids: list[int]  # its clientId and every clientId merged into it


@dataclass(frozen=True)
class ErasureStep:
    name: str
    erase: Callable[[ErasureContext], int]
    models: tuple[str, ...]
    order: int = 100


@dataclass(frozen=True)
class ExportStep:
    name: str
    export: Callable[[ExportContext], Any]
    models: tuple[str, ...]
    order: int = 100


@dataclass
class _Registry:
    erasure: dict[str, ErasureStep] = field(default_factory=dict)
    export: dict[str, ExportStep] = field(default_factory=dict)
    erasure_exempt: dict[str, str] = field(default_factory=dict)  # model label -> why it needs no step
    export_exempt: dict[str, str] = field(default_factory=dict)

    def erasure_steps(self) -> list[ErasureStep]:
        return sorted(self.erasure.values(), key=lambda s: (s.order, s.name))

    def export_steps(self) -> list[ExportStep]:
        return sorted(self.export.values(), key=lambda s: (s.order, s.name))

    def erasure_covered(self) -> dict[str, str]:
        """Model label → the step (or exemption) that covers it."""
        covered = {label: f"exempt: {why}" for label, why in self.erasure_exempt.items()}
        covered.update({label: step.name for step in self.erasure.values() for label in step.models})
        return covered

    def export_covered(self) -> dict[str, str]:
        covered = {label: f"exempt: {why}" for label, why in self.export_exempt.items()}
        covered.update({label: step.name for step in self.export.values() for label in step.models})
        return covered


registry = _Registry()

# What an erasure writes over a personal value it cannot delete (a report line, a log entry).
ERASED = "[erased]"


def register_erasure_step(
    name: str, *, erase: Callable[[ErasureContext], int], models: Iterable[str], order: int = 100
) -> None:
    """Register (or replace) the step that removes or anonymises one kind of row of an erased profile.

    ``erase`` returns the number of rows it touched (recorded on the ``Erasure``); ``models`` are the model
    labels (``app_label.ModelName``) it covers."""
    registry.erasure[name] = ErasureStep(name=name, erase=erase, models=tuple(models), order=order)


def register_export_step(
    name: str, *, export: Callable[[ExportContext], Any], models: Iterable[str], order: int = 100
) -> None:
    """Register (or replace) the step that writes one part of the portability document (under ``name``)."""
    registry.export[name] = ExportStep(name=name, export=export, models=tuple(models), order=order)


def register_erasure_exempt(model: str, reason: str) -> None:
    """Declare that a model the completeness test flags needs no erasure step, and why."""
    registry.erasure_exempt[model] = reason


def register_export_exempt(model: str, reason: str) -> None:
    """Declare that a model the completeness test flags has nothing for the portability document, and why."""
    registry.export_exempt[model] = reason


def models_holding_profile_data() -> list[str]:
    """Labels of every installed model that relates to a profile: a relation to ``Profile``, a clientId column,
    or a JSON or binary column (where copies of personal data end up). The completeness tests walk these."""
    from django.apps import apps
    from django.db import models as m

    labels = []
    for model in apps.get_models(include_auto_created=True):
        if model is Profile:
            labels.append(model._meta.label)
            continue
        for f in model._meta.get_fields():
            related = getattr(f, "related_model", None)
            if getattr(f, "concrete", False) and f.is_relation and related is Profile:
                break
            if getattr(f, "concrete", False) and (
                f.name == "client_id" or f.name.endswith("_client_id") or isinstance(f, m.JSONField | m.BinaryField)
            ):
                break
        else:
            continue
        labels.append(model._meta.label)
    return sorted(labels)


def uncovered_models() -> dict[str, list[str]]:
    """Models holding profile data that no erasure step (``erasure``) or no export step (``export``) covers."""
    holding = models_holding_profile_data()
    erasure, export = registry.erasure_covered(), registry.export_covered()
    return {
        "erasure": [label for label in holding if label not in erasure],
        "export": [label for label in holding if label not in export],
    }

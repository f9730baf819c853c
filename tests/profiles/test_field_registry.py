"""``profiles.fields`` is the one list of Profile's native fields and of the commerce figures: every model field is
in it, everything that offers fields reads it, and no module keeps a list of its own."""

import ast
from pathlib import Path

import pytest
from django.conf import settings

from api.paging import SORT_FIELDS
from profiles.conditions import TYPE_OPS, condition_parse
from profiles.fields import (
    ADDRESS,
    ANONYMOUS,
    COMMERCE_FIGURES,
    DEMOGRAPHICS,
    DOCUMENT_KEYS,
    EDITABLE_COLUMNS,
    FILTER_FIELDS,
    IDENTIFIER_COLUMNS,
    NATIVE_FIELDS,
    NOT_OFFERED,
    OFFERED,
    SORT_COLUMNS,
    api_name,
)
from profiles.models import Profile, ProfileCommerce
from profiles.selectors import commerce_document
from segments.admin import builder_meta
from segments.expressions import profile_expressions
from segments.models import Expression, ExpressionType

APPS = ("crm", "profiles", "consents", "segments", "imports", "exports", "webhooks", "privacy", "tracker", "api")
# Identifier kinds are IdentifierKind's vocabulary: lookups, limits and vendor maps list them (crm's settings
# cannot even import the domain), so they do not make a literal a copy of the field registry.
IDENTIFIER_NAMES = {*IDENTIFIER_COLUMNS.values(), *(api_name(c) for c in IDENTIFIER_COLUMNS.values())}
# Literals that hold native field names and must: (file, the name assigned) → why.
ALLOWED_LITERALS = {
    ("api/capillary/translation.py", "EXTENDED_NATIVE"): "Capillary's extendedFields → our columns, a vendor's map",
    ("api/expertsender/translation.py", "SERVICE_FIELDS"): "our names → ExpertSender's, a vendor's map",
}
AT_MOST = 3  # native fields one literal may name


def test_every_model_field_is_offered_or_excluded_with_a_reason():
    model = {f.column for f in Profile._meta.concrete_fields}
    offered = set(OFFERED) - {ANONYMOUS}
    assert not offered & set(NOT_OFFERED), "a column is either offered or excluded"
    missing = model - offered - set(NOT_OFFERED)
    assert not missing, f"add {sorted(missing)} to profiles.fields.OFFERED (or NOT_OFFERED, with the reason)"
    assert offered | set(NOT_OFFERED) <= model, "the registry names a column the model no longer has"
    assert all(reason.strip() for reason in NOT_OFFERED.values())
    assert {f.column for f in NATIVE_FIELDS} == model | {ANONYMOUS}
    assert len({f.api for f in NATIVE_FIELDS}) == len(NATIVE_FIELDS)


def test_every_editable_field_has_a_fieldset_and_every_filter_a_type():
    sections = {f.column: f.section for f in NATIVE_FIELDS}
    assert {sections[c] for c in EDITABLE_COLUMNS} <= {DEMOGRAPHICS, ADDRESS}
    assert all(f.type in TYPE_OPS for f in FILTER_FIELDS.values())
    assert all(f.column for f in NATIVE_FIELDS if f.sortable)


def test_the_surfaces_offer_what_the_registry_says():
    assert SORT_FIELDS == SORT_COLUMNS
    assert set(DOCUMENT_KEYS) >= {f.api for f in NATIVE_FIELDS if f.group in ("key", "identifier")}


def test_commerce_figures_are_columns_of_the_commerce_row_and_keys_of_its_document():
    columns = {f.column for f in ProfileCommerce._meta.concrete_fields}
    document = commerce_document(row=None)
    for name, figure in COMMERCE_FIGURES.items():
        assert figure.column in columns and name in document and figure.type in TYPE_OPS


@pytest.mark.django_db
def test_conditions_and_expressions_read_every_commerce_figure(make_profile):
    for name in COMMERCE_FIGURES:
        assert condition_parse({"commerce": name, "op": "exists", "value": True}).figure == name
    meta = builder_meta(None)
    assert [f["name"] for f in meta["commerce"]] == list(COMMERCE_FIGURES)
    assert [f["name"] for f in meta["fields"]] == list(FILTER_FIELDS)
    profile = make_profile(email="ann@example.com")
    expressions = [Expression(name=name, expression=name, type=ExpressionType.TEXT) for name in COMMERCE_FIGURES]
    assert [(e.name, e.error) for e in profile_expressions(profile, expressions=expressions)] == [
        (name, "") for name in COMMERCE_FIGURES
    ]


def _strings(nodes) -> set[str]:
    return {n.value for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def _literal_names(node) -> set[str]:
    """The strings a list, tuple, set or dict literal holds; none for a record, a dict whose values are all computed
    (a document or the fields of one write names each field once to give it its value: that is not a list)."""
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return _strings(node.elts)
    if not isinstance(node, ast.Dict):
        return set()
    listed = [v for v in node.values if isinstance(v, ast.Constant | ast.List | ast.Tuple | ast.Set)]
    if not listed:
        return set()
    return _strings(node.keys) | _strings(node.values)


def _assigned_name(node, parents) -> str:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Assign | ast.AnnAssign):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            return getattr(target, "id", getattr(target, "attr", ""))
    return ""


def test_no_module_keeps_its_own_list_of_native_fields():
    # A name → its field: ``firstName`` and ``first_name`` are one field.
    fields = {name: f.column for f in NATIVE_FIELDS for name in (f.api, f.column) if name not in IDENTIFIER_NAMES}
    root = Path(settings.BASE_DIR)
    found = []
    for app in APPS:
        for path in sorted((root / app).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if "migrations" in path.parts or relative == "profiles/fields.py":
                continue
            tree = ast.parse(path.read_text(), filename=relative)
            parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
            for node in ast.walk(tree):
                held = {fields[name] for name in _literal_names(node) if name in fields}
                if len(held) > AT_MOST and (relative, _assigned_name(node, parents)) not in ALLOWED_LITERALS:
                    found.append(f"{relative}:{node.lineno} {sorted(held)}")
    assert not found, "native field names listed outside profiles/fields.py (read the registry instead):\n" + (
        "\n".join(found)
    )

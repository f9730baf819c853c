"""The imports' part in erasure and portability (``profiles.privacy_registry``).

An import's report keeps failed and warned lines as they were sent, so an erased person's lines lose their text
there. The uploaded file leaves the storage as soon as its run has finished; a dry run's (kept for the run that
may follow) and a failed run's (kept to be resumed) stay until their job is purged (``JOB_RETENTION_DAYS``).
Staged keys live only while a job runs.
"""

from __future__ import annotations

from profiles.privacy_registry import ERASED, register_erasure_exempt, register_erasure_step, register_export_exempt


def import_reports_erase(ctx) -> int:
    """Report lines that name the person (any identifier value it holds or held) lose their text."""
    from imports.models import Issue

    needles = {value for value in ctx.values if len(value) >= 4}
    needles |= {value.lstrip("+") for kind, value in ctx.identifiers if kind == "phone"}
    if not needles:
        return 0
    patterns = [f"%{needle}%" for needle in sorted(needles)]
    return Issue.objects.extra(
        where=["(original ILIKE ANY(%s) OR message ILIKE ANY(%s))"], params=[patterns, patterns]
    ).update(original=ERASED, message=ERASED)


def register() -> None:
    register_erasure_step("import reports", erase=import_reports_erase, models=["imports.Issue"], order=65)
    for label, why in {
        "imports.ImportJob": "the job's mapping and checkpoints; its lines are in the report (scrubbed) and the file",
        "imports.SavedMapping": "mapping definitions, no profile data",
        "imports.Integration": "an integration's mapping and secret, no profile data",
    }.items():
        register_erasure_exempt(label, why)
    for label, why in {
        "imports.ImportJob": "an import job is the company's own record of a file, not data about the person",
        "imports.SavedMapping": "mapping definitions, no profile data",
        "imports.Integration": "an integration's mapping and secret, no profile data",
        "imports.Issue": "report lines are the files' lines as sent; the profile's data is exported from its tables",
    }.items():
        register_export_exempt(label, why)

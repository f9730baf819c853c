from django.urls import path

from api.synerise import batch, events, exports, merges, tags, transactions, views

urlpatterns = [
    # The lookups first: the most frequent requests, and no other route can match "v4/clients/by-<kind>/…".
    *(
        path(
            f"v4/clients/by-{kind}/<str:value>",
            views.ClientByIdentifierView.as_view(),
            {"kind": kind},
            name=f"synerise-client-by-{kind}",
        )
        for kind in views.LOOKUP_KINDS
    ),
    path("uauth/v2/auth/login/profile", views.LoginView.as_view(), name="synerise-login"),
    path("v4/clients", views.ClientListCreateView.as_view(), name="synerise-clients"),
    path("crm/v1/list", views.CrmListView.as_view(), name="synerise-list"),
    path("v4/clients/export.csv", exports.ClientExportCsvView.as_view(), name="synerise-export-csv"),
    path("v4/clients/export.jsonl", exports.ClientExportJsonlView.as_view(), name="synerise-export-jsonl"),
    path("v4/clients/batch", batch.BatchView.as_view(), name="synerise-batch"),
    path("v4/clients/batch/<uuid:job_id>", batch.BatchJobView.as_view(), name="synerise-batch-job"),
    # Tags: "v4/clients/tags" is its own path (the <int:client_id> route never matches it).
    path("v4/clients/tags", tags.TagListCreateView.as_view(), name="synerise-tags"),
    path("v4/clients/tags/<int:tag_id>", tags.TagDetailView.as_view(), name="synerise-tag"),
    path("v4/clients/<int:client_id>/tags/<int:tag_id>", tags.ClientTagView.as_view(), name="synerise-client-tag"),
    path("v4/clients/<int:client_id>/events", events.ClientEventsView.as_view(), name="synerise-client-events"),
    path("v4/clients/<int:client_id>/notes", events.ClientNotesView.as_view(), name="synerise-client-notes"),
    path(
        "v4/clients/<int:client_id>/aggregates",
        events.ClientAggregatesView.as_view(),
        name="synerise-client-aggregates",
    ),
    path(
        "v4/clients/<int:client_id>/export",
        views.ClientPortabilityExportView.as_view(),
        name="synerise-client-export",
    ),
    path("v4/events/custom", events.CustomEventView.as_view(), name="synerise-events-custom"),
    path("v4/transactions", transactions.TransactionsView.as_view(), name="synerise-transactions"),
    path("v4/clients/<int:client_id>", views.ClientByIdView.as_view(), name="synerise-client"),
    path(
        "v4/clients/merge/from/ids/<str:from_ids>/to/id/<int:to_id>",
        merges.ForcedMergeView.as_view(),
        name="synerise-merge",
    ),
    path(
        "v4/clients/<int:client_id>/unmerge/<int:previous_client_id>",
        merges.UnmergeView.as_view(),
        name="synerise-unmerge",
    ),
]

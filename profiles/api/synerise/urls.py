from django.urls import path

from profiles.api.synerise import merges, views

urlpatterns = [
    path("uauth/v2/auth/login/profile", views.LoginView.as_view(), name="synerise-login"),
    path("v4/clients", views.ClientListCreateView.as_view(), name="synerise-clients"),
    path("crm/v1/list", views.ClientListCreateView.as_view(http_method_names=["get", "options"]), name="synerise-list"),
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
    *(
        path(
            f"v4/clients/by-{kind}/<str:value>",
            views.ClientByIdentifierView.as_view(),
            {"kind": kind},
            name=f"synerise-client-by-{kind}",
        )
        for kind in views.LOOKUP_KINDS
    ),
]

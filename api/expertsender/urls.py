from django.urls import path

from api.expertsender import views

urlpatterns = [
    path("customers", views.CustomersView.as_view(), name="expertsender-customers"),
    *(
        path(
            f"customers/{kind}/<str:value>",
            views.CustomerView.as_view(),
            {"kind": kind},
            name=f"expertsender-by-{kind}",
        )
        for kind in views.LOOKUPS
    ),
]

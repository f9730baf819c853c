from django.urls import path

from consents import views

app_name = "consents"

urlpatterns = [
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("resign/<str:token>/", views.resign, name="resign"),
]

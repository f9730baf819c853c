from django.urls import path

from tracker import views

urlpatterns = [
    path("tracker.js", views.tracker_js, name="tracker-js"),
    path("t/collect", views.CollectView.as_view(), name="tracker-collect"),
    path("tracker/demo/", views.demo, name="tracker-demo"),
]

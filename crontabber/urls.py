"""crontabber's URLs; a project includes them, e.g. path("crontabber/", include("crontabber.urls"))."""

from django.urls import path

from .web import views

app_name = "crontabber"
urlpatterns = [
    path("health/", views.health_view, name="health"),
    path("metrics", views.metrics_view, name="metrics"),
]

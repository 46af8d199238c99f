"""The demo site plus ``/fail/``, a view with a bug: what a 500 leaves in production's log."""

from django.urls import path

from project.urls import urlpatterns as site_urlpatterns


def failing_view(request):
    return 1 // 0


urlpatterns = [path("fail/", failing_view), *site_urlpatterns]

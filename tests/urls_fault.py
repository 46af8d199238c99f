"""The demo's URLs plus its static files: the fault tests' gunicorn runs with DEBUG off and
no collectstatic, and the browser test needs ``tracker.js``."""

from django.contrib.staticfiles.views import serve
from django.urls import re_path

from project.urls import urlpatterns as site_urlpatterns

urlpatterns = [re_path(r"^static/(?P<path>.*)$", serve, {"insecure": True}), *site_urlpatterns]

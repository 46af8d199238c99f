"""URLs for bench/collect.py: the site, plus a bare Django JSON view to compare the collect
endpoint with (same server, database and Redis)."""

import json

from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def bare(request):
    """What any Django JSON endpoint does at least: parse the body, answer 204."""
    json.loads(request.body)
    return HttpResponse(status=204)


urlpatterns = [
    path("bench/bare/", bare),
    path("microadjust/", include("microadjust_cms.urls")),
    path("", include("wagtail.urls")),
]

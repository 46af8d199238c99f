"""A site URLconf that forgot microadjust_cms.urls (for the W002 system check)."""

from django.urls import include, path
from wagtail import urls as wagtail_urls

urlpatterns = [path("", include(wagtail_urls))]

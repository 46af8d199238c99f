"""Public endpoints: ``path("microadjust/", include("microadjust_cms.urls"))``."""

from django.urls import path

from .collect import collect
from .fragments import fragment

app_name = "microadjust"

urlpatterns = [
    path("collect/", collect, name="collect"),
    path("api/fragment/", fragment, name="fragment"),
]

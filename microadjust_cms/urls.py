"""Public endpoints: ``path("microadjust/", include("microadjust_cms.urls"))``."""

from django.urls import path

from .monitoring import metrics_view
from .rendering.fragments import fragment
from .tracking.collect import collect

app_name = "microadjust"

urlpatterns = [
    path("collect/", collect, name="collect"),
    path("api/fragment/", fragment, name="fragment"),
    path("metrics/", metrics_view, name="metrics"),
]

"""Public endpoints: ``path("microadjust/", include("microadjust_cms.urls"))``."""

from django.urls import path

from .collect import collect

app_name = "microadjust"

urlpatterns = [
    path("collect/", collect, name="collect"),
]

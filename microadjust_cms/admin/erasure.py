"""Personalization → Forget a visitor: a data subject's erasure request from the admin (the same
as ``manage.py microadjust_forget``). For users who may delete events (a leaf: only
``wagtail_hooks`` imports this)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import FormView
from wagtail.admin.auth import permission_denied
from wagtail.admin.menu import MenuItem
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin

from ..jobs.erasure import UnknownVisitor, forget_visitor, visitor_id_for
from ..visitor.stores import StoreUnavailable

PERMISSION = "microadjust_cms.delete_event"


def can_forget(user: Any) -> bool:
    return user.has_perm(PERMISSION)


class ForgetForm(forms.Form):
    visitor = forms.CharField(
        label=gettext_lazy("Visitor"), max_length=200,
        help_text=gettext_lazy("A visitor id (32 hexadecimal characters: the ma_vid cookie before its "
                               "signature), u<user id>, or a username."))

    def clean_visitor(self) -> str:
        try:
            return visitor_id_for(self.cleaned_data["visitor"])
        except UnknownVisitor as exc:
            raise forms.ValidationError(str(exc)) from None


class ForgetVisitorView(WagtailAdminTemplateMixin, FormView):
    template_name = "microadjust_cms/admin/forget_visitor.html"
    form_class = ForgetForm
    header_icon = "bin"
    page_title = gettext_lazy("Forget a visitor")

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not can_forget(request.user):
            return permission_denied(request)
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form: ForgetForm) -> HttpResponse:
        try:
            erasure = forget_visitor(form.cleaned_data["visitor"])
        except StoreUnavailable:
            messages.error(self.request, _("Events and exposures were deleted, but the profile store is "
                                           "unavailable: forget this visitor again once it is back."))
        else:
            messages.success(self.request, erasure.describe())
        return redirect("microadjust_forget:index")


class ForgetMenuItem(MenuItem):
    def is_shown(self, request: HttpRequest) -> bool:
        return can_forget(request.user)


def menu_item() -> MenuItem:
    return ForgetMenuItem(_("Forget a visitor"), reverse("microadjust_forget:index"), icon_name="bin",
                          order=520)


urlpatterns = [path("", ForgetVisitorView.as_view(), name="index")]

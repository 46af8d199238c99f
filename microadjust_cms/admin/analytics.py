"""Reports → Personalization: every personalized block's variants with their figures, read from
the analytics rollups (a leaf: only ``wagtail_hooks`` imports this).

Wagtail's report framework: filters (date range, device, segment or cluster, block), sortable
columns, CSV and XLSX export. Figures of groups under ``ANALYTICS_MIN_VISITORS`` are shown as "fewer than N".
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import django_filters
from django.db.models import ExpressionWrapper, F, FloatField
from django.db.models.functions import NullIf
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView
from wagtail.admin.auth import permission_denied
from wagtail.admin.filters import WagtailFilterSet
from wagtail.admin.menu import MenuItem
from wagtail.admin.ui.components import Component
from wagtail.admin.ui.tables import Column, TitleColumn
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.admin.views.reports import ReportView
from wagtail.admin.widgets import AdminDateInput
from wagtail.models import Page
from wagtail.permission_policies.pages import PagePermissionPolicy

from ..analytics.figures import VariantFigures, variant_figures, variant_totals
from ..analytics.models import Anomaly, BlockRollup
from ..conf import get_setting
from ..segments.membership import segment_choices
from ..signals.builtin import DEVICE_CHOICES

#: Days shown when no range is chosen (the last 30, today included).
DEFAULT_DAYS = 30


class PersonalizationReportFilterSet(WagtailFilterSet):
    """The range, device and segment pick the rollup rows before they are summed
    (``get_base_queryset``), so these filters only carry the form; the block filter narrows the
    summed rows."""

    date_from = django_filters.DateFilter(label=gettext_lazy("From"), method="_keep",
                                          widget=AdminDateInput)
    date_to = django_filters.DateFilter(label=gettext_lazy("To"), method="_keep",
                                        widget=AdminDateInput)
    device = django_filters.ChoiceFilter(label=gettext_lazy("Device"), choices=DEVICE_CHOICES,
                                         method="_keep", empty_label=gettext_lazy("All devices"))
    segment = django_filters.ChoiceFilter(
        label=gettext_lazy("Segment"), choices=segment_choices, method="_keep",
        empty_label=gettext_lazy("All visitors"),
        help_text=gettext_lazy("Visitors in the segment (or cluster) when the page was rendered."))
    block = django_filters.CharFilter(label=gettext_lazy("Block id"), field_name="block_id",
                                      lookup_expr="icontains")

    class Meta:
        model = BlockRollup
        fields: list[str] = []

    def _keep(self, queryset: Any, _name: str, _value: Any) -> Any:
        return queryset


def report_range(data: dict[str, Any]) -> tuple[date, date]:
    """The filter form's days, in order; the last ``DEFAULT_DAYS`` when none are given."""
    end = data.get("date_to") or timezone.localdate()
    start = data.get("date_from") or end - timedelta(days=DEFAULT_DAYS - 1)
    return (start, end) if start <= end else (end, start)


class FiguresColumn(Column):
    """A figure; for a hidden group (the privacy threshold), "fewer than N visitors" in the
    first figures column and nothing in the others."""

    def __init__(self, name: str, label: str, *, fmt: str = "{:,}", sort_key: str | None = None,
                 says_hidden: bool = False) -> None:
        super().__init__(name, label=label, sort_key=sort_key)
        self.fmt = fmt
        self.says_hidden = says_hidden

    def get_value(self, instance: Any) -> Any:
        if instance.figures.hidden:
            if not self.says_hidden:
                return ""
            return _("fewer than %(n)s visitors") % {"n": get_setting("ANALYTICS_MIN_VISITORS")}
        value = getattr(instance.figures, self.name)
        if value is None:
            return "–"
        if isinstance(value, tuple):
            return f"{value[0]:.1%} – {value[1]:.1%}"
        return self.fmt.format(value)


class Row:
    """One variant of one block on one page, as the table and the export read it."""

    def __init__(self, figures: VariantFigures, page_title: str) -> None:
        self.figures = figures
        self.page = page_title
        self.block_id = figures.block_id
        self.variant = figures.variant or "default"
        for name in ("impressions", "visitors", "clicks", "ctr", "dwell_median_s", "dwell_p90_s",
                     "abandon_rate", "converters", "conversion_rate"):
            setattr(self, name, None if figures.hidden else getattr(figures, name))
        low_high = figures.ctr_interval
        self.ctr_low, self.ctr_high = low_high if low_high and not figures.hidden else (None, None)


class PersonalizationReportView(ReportView):
    page_title = gettext_lazy("Personalization")
    header_icon = "group"
    index_url_name = "microadjust_reports:personalization"
    index_results_url_name = "microadjust_reports:personalization_results"
    filterset_class = PersonalizationReportFilterSet
    permission_policy = PagePermissionPolicy()
    any_permission_required = ["add", "change", "publish"]
    default_ordering = "-impressions"
    verbose_name = gettext_lazy("block variant")
    verbose_name_plural = gettext_lazy("block variants")
    paginate_by = 50
    columns = [
        TitleColumn("page", label=gettext_lazy("Page"),
                    get_url=lambda row: page_report_url(row.figures.page_id) if row.figures.page_id else None),
        Column("block_id", label=gettext_lazy("Block"), sort_key="block_id"),
        Column("variant", label=gettext_lazy("Variant"), sort_key="variant"),
        FiguresColumn("impressions", gettext_lazy("Impressions"), sort_key="impressions", says_hidden=True),
        FiguresColumn("visitors", gettext_lazy("Visitors (daily)"), sort_key="visitors"),
        FiguresColumn("clicks", gettext_lazy("Clicks"), sort_key="clicks"),
        FiguresColumn("ctr", gettext_lazy("CTR"), fmt="{:.1%}", sort_key="ctr"),
        FiguresColumn("ctr_interval", gettext_lazy("CTR, 95% interval")),
        FiguresColumn("dwell_median_s", gettext_lazy("Median dwell"), fmt="{:.1f} s"),
        FiguresColumn("dwell_p90_s", gettext_lazy("90th percentile dwell"), fmt="{:.1f} s"),
        FiguresColumn("abandon_rate", gettext_lazy("Abandon rate"), fmt="{:.1%}", sort_key="abandon_rate"),
        FiguresColumn("converters", gettext_lazy("Conversions"), sort_key="converters"),
        FiguresColumn("conversion_rate", gettext_lazy("Conversion rate"), fmt="{:.1%}",
                      sort_key="conversion_rate"),
    ]
    list_export = ["page", "block_id", "variant", "impressions", "visitors", "clicks", "ctr",
                   "ctr_low", "ctr_high", "dwell_median_s", "dwell_p90_s", "abandon_rate",
                   "converters", "conversion_rate"]
    export_headings = {"page": gettext_lazy("Page"), "block_id": gettext_lazy("Block"),
                       "variant": gettext_lazy("Variant"), "impressions": gettext_lazy("Impressions"),
                       "visitors": gettext_lazy("Visitors (daily)"), "clicks": gettext_lazy("Clicks"),
                       "ctr": gettext_lazy("CTR"), "ctr_low": gettext_lazy("CTR interval low"),
                       "ctr_high": gettext_lazy("CTR interval high"),
                       "dwell_median_s": gettext_lazy("Median dwell (s)"),
                       "dwell_p90_s": gettext_lazy("90th percentile dwell (s)"),
                       "abandon_rate": gettext_lazy("Abandon rate"),
                       "converters": gettext_lazy("Conversions"),
                       "conversion_rate": gettext_lazy("Conversion rate")}

    def get_filename(self) -> str:
        start, end = self.date_range
        return f"personalization-{start:%Y-%m-%d}-{end:%Y-%m-%d}"

    @property
    def cleaned_filters(self) -> dict[str, Any]:
        filters = self.filters
        return filters.form.cleaned_data if filters and filters.is_valid() else {}

    @property
    def date_range(self) -> tuple[date, date]:
        return report_range(self.cleaned_filters)

    def get_base_queryset(self) -> Any:
        impressions = NullIf(F("impressions"), 0)  # the summed annotation
        filters = self.cleaned_filters
        return (variant_totals(*self.date_range, device=filters.get("device"), segment=filters.get("segment"))
                .annotate(ctr=ExpressionWrapper(F("clicks") * 1.0 / impressions, output_field=FloatField()),
                          abandon_rate=ExpressionWrapper(F("abandons") * 1.0 / impressions,
                                                         output_field=FloatField()),
                          conversion_rate=ExpressionWrapper(F("converters") * 1.0 / NullIf(F("visitors"), 0),
                                                            output_field=FloatField())))

    def order_queryset(self, queryset: Any) -> Any:
        ordering = self.ordering
        if not ordering:
            return queryset
        name = ordering.lstrip("-")
        field = F(name).desc(nulls_last=True) if ordering.startswith("-") else F(name).asc(nulls_last=True)
        return queryset.order_by(field, "block_id", "variant")

    def paginate_queryset(self, queryset: Any, page_size: int) -> Any:
        """The page's rows as ``Row`` objects before the table is built from them."""
        paginator, page, object_list, is_paginated = super().paginate_queryset(queryset, page_size)
        page.object_list = self.rows(object_list)
        return paginator, page, page.object_list, is_paginated

    def decorate_paginated_queryset(self, object_list: Any) -> list[Row]:
        """Export (unpaginated): the summed rows become ``Row`` objects here."""
        if isinstance(object_list, list):
            return object_list  # a page: made into rows by ``paginate_queryset``
        return self.rows(object_list)

    def rows(self, object_list: Any) -> list[Row]:
        rows = list(object_list)
        titles = dict(Page.objects.filter(pk__in={r["page_id"] for r in rows if r["page_id"]})
                      .values_list("pk", "title"))
        return [Row(variant_figures(row, row["busiest"]), titles.get(row["page_id"], "–"))
                for row in rows]

    def get_page_subtitle(self) -> str:
        start, end = self.date_range
        return _("%(start)s to %(end)s") % {"start": start, "end": end}


class PageReportView(WagtailAdminTemplateMixin, TemplateView):
    """One page: how far down its views scrolled, its blocks ranked by engagement, each block's
    variants side by side with their CTR intervals, and its last hours hour by hour."""

    template_name = "microadjust_cms/admin/analytics_page.html"
    header_icon = "doc-full"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not PagePermissionPolicy().user_has_any_permission(request.user, ["add", "change", "publish"]):
            return permission_denied(request)
        self.page = get_object_or_404(Page, pk=kwargs["page_id"])
        self.filterset = PersonalizationReportFilterSet(request.GET or None, request=request)
        return super().dispatch(request, *args, **kwargs)

    def get_page_title(self) -> str:
        return _("Personalization: %(page)s") % {"page": self.page.title}

    def get_breadcrumbs_items(self) -> list[dict[str, Any]]:
        return [*self.breadcrumbs_items,
                {"url": reverse("microadjust_reports:personalization"), "label": _("Personalization")},
                {"url": "", "label": self.page.title}]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        from ..analytics.charts import dropoff_chart, hours_chart, interval_chart
        from ..analytics.figures import page_blocks, page_dropoff, page_hours

        context = super().get_context_data(**kwargs)
        data = self.filterset.form.cleaned_data if self.filterset.is_bound and self.filterset.is_valid() else {}
        start, end = report_range(data)
        picked = {"device": data.get("device") or None, "segment": data.get("segment") or None}
        dropoff = page_dropoff(self.page.pk, start, end, **picked)
        blocks = []
        for block in page_blocks(self.page.pk, start, end, **picked):
            shown = [v for v in block.variants if not v.hidden and v.ctr_interval]
            blocks.append((block, interval_chart(
                [(v.variant or "default", min(v.ctr, 1.0), *v.ctr_interval) for v in shown],
                title=_("CTR of each variant of %(block)s, with 95%% intervals") % {"block": block.block_id})))
        hours = page_hours(self.page.pk, **picked)
        context.update({
            "hours": hours, "rollup_hours": len(hours),
            "hours_chart": hours_chart(
                [(f"{timezone.localtime(h.start):%H:%M}", None if h.hidden else h.impressions) for h in hours],
                title=_("Block impressions on this page, hour by hour")),
            "page": self.page, "start": start, "end": end, "form": self.filterset.form,
            "min_visitors": get_setting("ANALYTICS_MIN_VISITORS"), "dropoff": dropoff, "blocks": blocks,
            "dropoff_chart": dropoff_chart(dropoff.reached, title=_("Share of page views reaching each "
                                                                   "scroll depth")) if not dropoff.hidden else "",
        })
        return context


def page_report_url(page_id: int) -> str:
    return reverse("microadjust_reports:page", args=[page_id])


class ReportMenuItem(MenuItem):
    def is_shown(self, request: Any) -> bool:
        return PagePermissionPolicy().user_has_any_permission(request.user, ["add", "change", "publish"])


def menu_item() -> MenuItem:
    return ReportMenuItem(_("Personalization"), reverse("microadjust_reports:personalization"),
                          icon_name="group", order=1100)


urlpatterns = [
    path("", PersonalizationReportView.as_view(), name="personalization"),
    path("page/<int:page_id>/", PageReportView.as_view(), name="page"),
    path("results/", PersonalizationReportView.as_view(results_only=True), name="personalization_results"),
]


class AnomaliesPanel(Component):
    """The admin dashboard's "Spikes and drops" panel: the last week's anomalies."""

    name = "microadjust_anomalies"
    template_name = "microadjust_cms/admin/anomalies_panel.html"
    order = 150
    days = 7

    def render_html(self, parent_context: Any = None) -> str:
        request = (parent_context or {}).get("request")
        if request is None or not PagePermissionPolicy().user_has_any_permission(
                request.user, ["add", "change", "publish"]):
            return ""
        return super().render_html(parent_context)

    def get_context_data(self, parent_context: Any = None) -> dict[str, Any]:
        since = timezone.localdate() - timedelta(days=self.days)
        found = list(Anomaly.objects.filter(day__gte=since)[:20])
        titles = dict(Page.objects.filter(pk__in={a.page_id for a in found if a.page_id})
                      .values_list("pk", "title"))
        return {"anomalies": [(a, titles.get(a.page_id, "–"),
                               page_report_url(a.page_id) if a.page_id else "") for a in found],
                "days": self.days}

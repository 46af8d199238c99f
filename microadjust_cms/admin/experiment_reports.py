"""The experiment report page, its CSV exports, the start / pause / resume / finish buttons and
the sample-size calculator's JSON (a leaf: only ``wagtail_hooks`` imports this)."""

from __future__ import annotations

import csv
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django.views.generic import TemplateView
from wagtail.admin import messages
from wagtail.admin.auth import permission_denied
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin

from ..experiments import lifecycle, stats
from ..experiments.chart import line_chart
from ..experiments.models import Experiment
from ..experiments.report import METRIC_LABELS, METRICS, build_report
from ..responses import problem

VIEW_PERMISSIONS = ("microadjust_cms.view_experiment", "microadjust_cms.change_experiment",
                    "microadjust_cms.add_experiment")
CSV_TABLES = ("arms", "daily")


def can_view(user: Any) -> bool:
    return any(user.has_perm(p) for p in VIEW_PERMISSIONS)


def _metric(request: HttpRequest) -> str:
    metric = request.GET.get("metric", "conversion")
    if metric not in METRICS:
        raise Http404(f"No metric {metric!r}")
    return metric


def report_url(experiment: Experiment) -> str:
    return reverse("microadjust_experiments:report", args=[experiment.pk])


def _chart(report: Any) -> Any:
    series: dict[str, list] = {arm.name: [] for arm in report.arms}
    for point in report.daily:
        value = point.cumulative_value(report.metric)
        if value is not None:
            series.setdefault(point.arm, []).append((point.day, value))
    series = {name: values for name, values in series.items() if values}
    title = _("%(metric)s per arm, cumulative by day of first exposure") % {"metric": METRIC_LABELS[report.metric]}
    return line_chart(series, percent=report.metric == "conversion", title=title)


class ExperimentReportView(WagtailAdminTemplateMixin, TemplateView):
    template_name = "microadjust_cms/experiments/report.html"
    header_icon = "tasks"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not can_view(request.user):
            return permission_denied(request)
        self.experiment = get_object_or_404(Experiment, pk=kwargs["pk"])
        self.metric = _metric(request)
        return super().dispatch(request, *args, **kwargs)

    def get_page_title(self) -> str:
        return _("Report: %(name)s") % {"name": self.experiment.name}

    def get_breadcrumbs_items(self) -> list[dict[str, Any]]:
        return [*self.breadcrumbs_items,
                {"url": reverse("wagtailsnippets_microadjust_cms_experiment:list"), "label": _("Experiments")},
                {"url": reverse("wagtailsnippets_microadjust_cms_experiment:edit", args=[self.experiment.pk]),
                 "label": self.experiment.name},
                {"url": "", "label": _("Report")}]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        report = build_report(self.experiment, self.metric)
        percent = self.metric == "conversion"
        rows = ([_display_row(c, r, percent) for c, r in zip(report.arms, report.analysis.arms, strict=True)]
                if report.analysis else [])
        pk = self.experiment.pk
        context.update(
            experiment=self.experiment, report=report, rows=rows, metric=self.metric,
            metric_label=METRIC_LABELS[self.metric], metrics=[(m, METRIC_LABELS[m]) for m in METRICS],
            chart=_chart(report),
            csv_urls={table: reverse("microadjust_experiments:csv", args=[pk, table]) + f"?metric={self.metric}"
                      for table in CSV_TABLES},
            actions=[(a, reverse("microadjust_experiments:action", args=[pk, a.name]))
                     for a in lifecycle.available_actions(self.experiment, self.request.user)],
            history_url=reverse("wagtailsnippets_microadjust_cms_experiment:history", args=[pk]),
            edit_url=reverse("wagtailsnippets_microadjust_cms_experiment:edit", args=[pk]))
        return context


def _value(value: float | None, percent: bool, signed: bool = False) -> str:
    if value is None:
        return "–"
    sign = "+" if signed else ""
    return f"{value * 100:{sign}.2f}%" if percent else f"{value:{sign}.3g}"


def _display_row(counts: Any, row: stats.ArmReport, percent: bool) -> dict[str, Any]:
    """One arms-table row as the page shows it (rates in percent, differences in points)."""
    def interval(pair: tuple[float, float] | None, signed: bool = False) -> str:
        return f"[{_value(pair[0], percent, signed)}, {_value(pair[1], percent, signed)}]" if pair else "–"

    return {"name": row.name, "weight": counts.weight, "is_control": row.is_control, "exposures": row.exposures,
            "conversions": counts.conversions, "value": _value(row.value, percent), "interval": interval(row.interval),
            "difference": _value(row.difference, percent, signed=True), "ci": interval(row.ci, signed=True),
            "lift": "–" if row.relative_lift is None else f"{row.relative_lift * 100:+.1f}%",
            "p_value": "–" if row.p_value is None else f"{row.p_value:.3g}",
            "adjusted_p_value": "–" if row.adjusted_p_value is None else f"{row.adjusted_p_value:.3g}",
            "verdict": row.verdict}


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


@require_GET
def report_csv(request: HttpRequest, pk: int, table: str) -> HttpResponse:
    """``arms``: the arms table as shown; ``daily``: exposures and conversions per day and arm."""
    if not can_view(request.user):
        return permission_denied(request)
    if table not in CSV_TABLES:
        raise Http404(f"No table {table!r}")
    experiment = get_object_or_404(Experiment, pk=pk)
    report = build_report(experiment, _metric(request))
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{experiment.slug}-{table}.csv"'
    writer = csv.writer(response)
    if table == "arms":
        writer.writerow(["arm", "weight", "control", "exposures", "conversions", "dwell_total_s", "metric", "value",
                         "interval_low", "interval_high", "difference", "relative_lift", "ci_low", "ci_high",
                         "p_value", "holm_p_value", "verdict", "method"])
        analysed = report.analysis.arms if report.analysis else [None] * len(report.arms)
        for counts, row in zip(report.arms, analysed, strict=True):
            interval = row.interval if row and row.interval else (None, None)
            ci = row.ci if row and row.ci else (None, None)
            writer.writerow([counts.name, counts.weight, counts.is_control, counts.exposures, counts.conversions,
                             _fmt(counts.dwell_total), report.metric, _fmt(row and row.value), _fmt(interval[0]),
                             _fmt(interval[1]), _fmt(row and row.difference), _fmt(row and row.relative_lift),
                             _fmt(ci[0]), _fmt(ci[1]), _fmt(row and row.p_value), _fmt(row and row.adjusted_p_value),
                             row.verdict if row else "", report.analysis.method_name if report.analysis else ""])
    else:
        writer.writerow(["day", "arm", "exposures", "conversions", "dwell_total_s", "cumulative_exposures",
                         "cumulative_conversions", f"cumulative_{report.metric}"])
        for p in report.daily:
            writer.writerow([p.day.isoformat(), p.arm, p.exposures, p.conversions, _fmt(p.dwell_total),
                             p.cumulative_exposures, p.cumulative_conversions,
                             _fmt(p.cumulative_value(report.metric))])
    return response


@require_POST
def experiment_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Start, pause, resume or finish; back to the report with a message either way."""
    spec = lifecycle.ACTIONS.get(action)
    if spec is None:
        raise Http404(f"No action {action!r}")
    if not request.user.has_perm(spec.permission):
        return permission_denied(request)
    experiment = get_object_or_404(Experiment, pk=pk)
    try:
        experiment = lifecycle.transition(experiment, action, request.user)
    except lifecycle.TransitionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("%(name)s is now %(status)s.") % {
            "name": experiment.name, "status": experiment.get_status_display().lower()})
    return HttpResponseRedirect(report_url(experiment))


@require_GET
def sample_size(request: HttpRequest) -> JsonResponse:
    """``?baseline=0.1&mde=0.1&power=0.8&arms=3[&alpha=0.05&relative=1]``: visitors per arm, or
    the package's usual problem body (``error`` code, ``detail`` lines) with a 400 or 403."""
    if not can_view(request.user):
        return problem(403, "forbidden", _("You do not have permission to plan experiments."))
    try:
        result = stats.sample_size_per_arm(
            float(request.GET.get("baseline", "")), float(request.GET.get("mde", "")),
            power=float(request.GET.get("power", "0.8")), alpha=float(request.GET.get("alpha", "0.05")),
            relative=request.GET.get("relative", "1") not in ("0", "false"), arms=int(request.GET.get("arms", "2")))
    except (TypeError, ValueError) as exc:
        return problem(400, "bad_request", str(exc) or _("Give baseline, mde and power as numbers."))
    return JsonResponse({"per_arm": result.per_arm, "total": result.total, "baseline_rate": result.baseline_rate,
                         "variant_rate": result.variant_rate, "alpha_per_comparison": result.alpha_per_comparison,
                         "power": result.power})


urlpatterns = [
    path("<int:pk>/report/", ExperimentReportView.as_view(), name="report"),
    path("<int:pk>/report/<str:table>.csv", report_csv, name="csv"),
    path("<int:pk>/action/<str:action>/", experiment_action, name="action"),
    path("sample-size.json", sample_size, name="sample_size"),
]

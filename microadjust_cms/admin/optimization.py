"""The "Auto-optimize" admin page: each auto-optimized block, and per context each candidate's
posterior, chance of being best and share of the trials (a leaf: only ``wagtail_hooks`` and the
admin hooks import this). Reading it costs one profile-store round trip for all blocks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from django.views.generic import TemplateView
from scipy.stats import beta as beta_distribution
from wagtail.admin.auth import permission_denied
from wagtail.admin.menu import MenuItem
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.models import Page

from ..conf import get_setting
from ..rendering.block_ids import object_personalized_values
from ..rendering.optimizer import Optimizer, dominant, posteriors, tallies
from ..visitor.stores import StoreUnavailable, get_profile_store
from .jobs import RUN_PERMISSION, can_view

#: Draws per posterior for the chance of being best (Monte Carlo; seeded, so a reload agrees).
DRAWS = 4000


@dataclass
class CandidateRow:
    variant: str
    trials: int
    successes: int
    mean: float
    low: float
    high: float
    best: float
    share: float


@dataclass
class ContextTable:
    context: str
    trials: int
    leader: str
    stopped: bool
    rows: list[CandidateRow]


@dataclass
class OptimizedBlock:
    page: Page
    block_id: str
    optimizer: Optimizer
    variants: list[str]
    contexts: list[ContextTable] = field(default_factory=list)


def optimized_blocks() -> list[OptimizedBlock]:
    """Every auto-optimized block on the live pages (their stored data, read once here)."""
    found = []
    for page in Page.objects.live().specific().order_by("path"):
        for value in object_personalized_values(page):
            optimizer = value.optimizer
            if optimizer is not None:
                names = [name for name, _test, _position in value.program()]
                found.append(OptimizedBlock(page, value.block_id, optimizer, [*names, "default"]))
    return found


def context_table(context: str, variants: list[str], counters: dict[str, int],
                  rng: np.random.Generator) -> ContextTable:
    """One context's candidates as ``decide`` sees them (same priors), with a 95% credible
    interval and the chance of being best from ``DRAWS`` posterior draws."""
    posts = posteriors(variants, counters, context, get_setting("OPTIMIZE_PRIOR_TRIALS"))
    draws = np.column_stack([rng.beta(p.alpha, p.beta, DRAWS) for p in posts.values()])
    best = np.bincount(draws.argmax(axis=1), minlength=len(posts)) / DRAWS
    total = sum(p.trials for p in posts.values())
    rows = []
    for index, (name, post) in enumerate(posts.items()):
        low, high = beta_distribution.ppf([0.025, 0.975], post.alpha, post.beta)
        rows.append(CandidateRow(name, post.trials, post.successes, post.mean, float(low),
                                 float(high), float(best[index]),
                                 post.trials / total if total else 0.0))
    winner = dominant(posts, probability=get_setting("OPTIMIZE_STOP_PROBABILITY"),
                      min_trials=get_setting("OPTIMIZE_STOP_MIN_TRIALS"))
    leader = max(posts, key=lambda name: posts[name].mean)
    return ContextTable(context, total, winner or leader, winner is not None, rows)


class OptimizationView(WagtailAdminTemplateMixin, TemplateView):
    template_name = "microadjust_cms/admin/optimization.html"
    header_icon = "pick"
    page_title = gettext_lazy("Auto-optimize")

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not can_view(request.user):
            return permission_denied(request)
        return super().dispatch(request, *args, **kwargs)

    def get_page_title(self) -> str:
        return _("Auto-optimize")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        blocks = optimized_blocks()
        error = ""
        try:
            counters = get_profile_store().load_counters([b.block_id for b in blocks])
        except StoreUnavailable as exc:
            counters, error = {}, str(exc)
        rng = np.random.default_rng(0)
        for block in blocks:
            found = counters.get(block.block_id) or {}
            contexts = sorted({ctx for ctx, _variant in tallies(found)})
            block.contexts = [context_table(ctx, block.variants, found, rng) for ctx in contexts]
        context.update(blocks=blocks, error=error, can_reset=self.request.user.has_perm(RUN_PERMISSION),
                       enabled=get_setting("OPTIMIZE"))
        return context


@require_POST
def reset_block(request: HttpRequest, block_id: str) -> HttpResponse:
    """Forget a block's counters: it learns again from its priors (Beta(1, 1))."""
    if not request.user.has_perm(RUN_PERMISSION):
        return permission_denied(request)
    if block_id not in {block.block_id for block in optimized_blocks()}:
        messages.error(request, _("No auto-optimized block %(block)s on a live page.") % {"block": block_id})
    else:
        try:
            get_profile_store().reset_counters(block_id)
            messages.success(request, _("Block %(block)s starts learning again.") % {"block": block_id})
        except StoreUnavailable as exc:
            messages.error(request, _("The profile store could not be reached: %(error)s") % {"error": exc})
    return HttpResponseRedirect(reverse("microadjust_optimize:index"))


class OptimizationMenuItem(MenuItem):
    def is_shown(self, request: HttpRequest) -> bool:
        return can_view(request.user)


def menu_item() -> MenuItem:
    return OptimizationMenuItem(_("Auto-optimize"), reverse("microadjust_optimize:index"),
                                icon_name="pick", order=450)


urlpatterns = [
    path("", OptimizationView.as_view(), name="index"),
    path("<str:block_id>/reset/", reset_block, name="reset"),
]

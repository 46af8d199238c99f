"""Auto-optimize: a PersonalizedBlock that learns which of its matching variants works best.

An editor switches it on per block (the "Auto-optimize" panel) and names a goal (a click on
the block, or a conversion) and a context (everyone, in or out of a segment, or the visitor's
cluster). Among the variants whose conditions match, plus the default, ``decide`` then picks by
Thompson sampling on each variant's Beta posterior in that context:

- **Counters, not SQL.** Impressions (trials) and goals (successes) per block, context and
  variant are counters in the profile store (``counter_key``), incremented by the collect
  endpoint from events that carry ``opt`` (the wrapper's ``data-ma-opt="<context> <goal>"``),
  in the same round trip as the visitor's profile update; they are read at render with the
  visitor's profile (``visitor.context.optimized_blocks``), so a page view costs no extra trip
  once a process has rendered the page.
- **Priors from history.** A variant's prior is its rate in the other contexts, worth at most
  ``OPTIMIZE_PRIOR_TRIALS`` trials: a new cluster starts from what everybody did.
- **Bounded exploration.** Each candidate keeps a floor share (``min_share``, drawn uniformly
  first), a visitor keeps its draws for the visit (uniform numbers hashed from visitor, block
  and visit), and a context stops exploring when its leader dominates the runner-up
  (``OPTIMIZE_STOP_PROBABILITY`` after ``OPTIMIZE_STOP_MIN_TRIALS`` trials each).
- **Cheap at render.** Posteriors and dominance are computed once per state of a block's
  counters (``_plan``); a draw is one hash and, once both Beta parameters reach 5, one inverse
  normal CDF (the posterior's normal approximation; exact Beta draws before that).
- **Holdout excluded.** Held-out visitors get the default before anything here runs, and their
  pages carry no ``data-ma-opt``, so their events never reach the counters.

The decision is an adjustment like any other, with reason ``optimize`` (a Thompson draw),
``optimize-floor`` (the floor share) or ``optimize-stop`` (the dominant variant).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Mapping
from statistics import NormalDist
from typing import Any, NamedTuple

from ..behaviour import OPT_GOAL_RE, SUCCESSES, TRIALS
from ..conf import get_setting
from ..segments.membership import membership
from ..visitor.context import optimized_blocks
from ..visitor.stores import StoreUnavailable, get_profile_store

CONTEXTS = ("all", "cluster", "segment")
REASONS = ("optimize", "optimize-floor", "optimize-stop")
#: Largest floor share an editor may give each variant (the rest is the bandit's).
MAX_MIN_SHARE = 0.2


class Optimizer(NamedTuple):
    """A block's auto-optimize settings, as stored (``optimize`` in the block's data)."""

    goal: str
    context: str
    segment: str
    min_share: float

    def attribute(self, context_key: str) -> str:
        """``data-ma-opt``'s value for a variant chosen in ``context_key``."""
        return f"{context_key} {self.goal}"


def optimizer_from(stored: Any) -> Optimizer | None:
    """The settings of a block's stored ``optimize`` dict, or None when off or unreadable."""
    if not isinstance(stored, Mapping) or not stored.get("enabled"):
        return None
    goal = stored.get("goal") or "click"
    context = stored.get("context") or "cluster"
    segment = stored.get("segment") or ""
    if not isinstance(goal, str) or not OPT_GOAL_RE.match(goal) or context not in CONTEXTS:
        return None
    if context == "segment" and not segment:
        return None
    try:
        share = float(stored.get("min_share") or 0.0)
    except (TypeError, ValueError):
        share = 0.0
    return Optimizer(goal, context, segment, min(max(share, 0.0), MAX_MIN_SHARE))


def context_key(optimizer: Optimizer, visitor: Any) -> str:
    """The context the visitor is in: ``all``, ``in``/``out`` of the segment, its cluster
    (``cluster-<n>``) or ``none`` (not clustered, or the profile store is down)."""
    if optimizer.context == "all":
        return "all"
    if optimizer.context == "segment":
        return "in" if optimizer.segment in membership(visitor) else "out"
    try:
        cluster = visitor.profile.cluster
    except StoreUnavailable:
        return "none"
    return cluster if cluster.startswith("cluster-") else "none"


def block_counters(visitor: Any, block_id: str) -> Mapping[str, int] | None:
    """The block's counters: from the profile when its load carried them, else read once this
    request (and the page noted, so its next loads carry them). None when the store is down."""
    try:
        loaded = visitor.profile.counters.get(block_id)
    except StoreUnavailable:
        return None
    if loaded is not None:
        return loaded
    memo_key = ("__counters", block_id)
    if memo_key not in visitor.memo:
        page = visitor.page_key
        if page is not None:
            known = optimized_blocks.get(page, ())
            if block_id not in known:
                optimized_blocks[page] = (*known, block_id)
        try:
            visitor.memo[memo_key] = get_profile_store().load_counters([block_id]).get(block_id, {})
        except StoreUnavailable:
            visitor.memo[memo_key] = None
    return visitor.memo[memo_key]


class Posterior(NamedTuple):
    alpha: float
    beta: float
    trials: int
    successes: int

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    @property
    def variance(self) -> float:
        a, b = self.alpha, self.beta
        return a * b / ((a + b) ** 2 * (a + b + 1))


def split_field(name: str) -> tuple[str, str, str] | None:
    """(kind, context, variant) of a counter field, or None for a malformed one."""
    parts = name.split("|", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


def tallies(counters: Mapping[str, int]) -> dict[tuple[str, str], list[int]]:
    """(context, variant) → [trials, successes] from a block's counter fields."""
    found: dict[tuple[str, str], list[int]] = {}
    for name, count in counters.items():
        parts = split_field(name)
        if parts is None or parts[0] not in (TRIALS, SUCCESSES):
            continue
        entry = found.setdefault((parts[1], parts[2]), [0, 0])
        entry[0 if parts[0] == TRIALS else 1] += int(count)
    return found


def posteriors(variants: list[str], counters: Mapping[str, int], context: str,
               prior_trials: float) -> dict[str, Posterior]:
    """Each variant's Beta posterior in ``context``: Beta(1, 1) plus its rate in the other
    contexts worth at most ``prior_trials`` trials, plus its own trials and successes here
    (successes capped at trials: a visitor may click twice on one impression)."""
    counts = tallies(counters)
    result = {}
    for variant in variants:
        trials = successes = other_trials = other_successes = 0
        for (ctx, name), (n, s) in counts.items():
            if name != variant:
                continue
            if ctx == context:
                trials, successes = n, min(s, n)
            else:
                other_trials += n
                other_successes += min(s, n)
        weight = min(other_trials, prior_trials)
        rate = other_successes / other_trials if other_trials else 0.0
        result[variant] = Posterior(1.0 + weight * rate + successes,
                                    1.0 + weight * (1.0 - rate) + trials - successes,
                                    trials, successes)
    return result


def beats(first: Posterior, second: Posterior) -> float:
    """P(first's rate > second's), normal approximation of the two Beta posteriors."""
    spread = math.sqrt(first.variance + second.variance)
    if spread == 0:
        return 0.5
    return 0.5 * (1.0 + math.erf((first.mean - second.mean) / (spread * math.sqrt(2.0))))


def dominant(posts: dict[str, Posterior], *, probability: float, min_trials: int) -> str | None:
    """The leader when it beats the runner-up with ``probability``, both tried enough."""
    if len(posts) < 2:
        return next(iter(posts), None)
    ranked = sorted(posts, key=lambda name: posts[name].mean, reverse=True)
    leader, runner = posts[ranked[0]], posts[ranked[1]]
    if leader.trials < min_trials or runner.trials < min_trials:
        return None
    return ranked[0] if beats(leader, runner) >= probability else None


#: Both Beta parameters at least this: a posterior draw is taken from its normal approximation
#: (one inverse CDF; Beta(5, 5) is already close to normal), else an exact Beta draw.
NORMAL_FROM = 5.0
_standard_normal = NormalDist()


def draw(post: Posterior, u: float) -> float:
    """A posterior draw for the uniform ``u`` (in (0, 1)): the same ``u``, the same draw."""
    if post.alpha >= NORMAL_FROM and post.beta >= NORMAL_FROM:
        return post.mean + math.sqrt(post.variance) * _standard_normal.inv_cdf(u)
    return random.Random(int(u * 2**53)).betavariate(post.alpha, post.beta)


def choose(posts: dict[str, Posterior], uniform: Callable[[str], float], *, min_share: float,
           stop_probability: float, stop_min_trials: int,
           winner: str | None | object = ...) -> tuple[str, str]:
    """(variant, reason): the dominant one, a floor draw, or the best Thompson draw.
    ``uniform(label)`` gives the uniform number for each random choice (``label``: "floor",
    "pick" or a variant name); ``winner``: ``dominant``'s answer when the caller has it."""
    if winner is ...:
        winner = dominant(posts, probability=stop_probability, min_trials=stop_min_trials)
    if winner is not None:
        return winner, "optimize-stop"  # type: ignore[return-value]
    names = list(posts)
    if min_share and uniform("floor") < min(1.0, min_share * len(names)):
        return names[min(int(uniform("pick") * len(names)), len(names) - 1)], "optimize-floor"
    best = max(names, key=lambda name: draw(posts[name], uniform(name)))
    return best, "optimize"


def visit_uniform(visitor: Any, block_id: str) -> Callable[[str], float]:
    """The visitor's uniform numbers for this block and visit, from a hash: the same draws on
    every page view of a visit (no flicker), new ones next visit; fresh random numbers when
    the visitor cannot be known."""
    identity = visitor.visitor_id
    if not identity:
        return lambda _label: random.random() or 0.5
    try:
        visit = visitor.profile.visits
    except StoreUnavailable:
        visit = 0
    prefix = f"{identity}|{block_id}|{visit}|".encode()

    def uniform(label: str) -> float:
        digest = hashlib.blake2b(prefix + label.encode(), digest_size=8).digest()
        return (int.from_bytes(digest, "big") + 0.5) / 2**64

    return uniform


class _Plan(NamedTuple):
    posts: dict[str, Posterior]
    winner: str | None


#: (block, context, candidates, counters) → posteriors and dominance: recomputed only when a
#: block's counters change (an event arrived), not on every page view. Bounded.
_plans: dict[tuple, _Plan] = {}
PLAN_LIMIT = 4096


def _plan(block_id: str, context: str, candidates: list[str], counters: Mapping[str, int]) -> _Plan:
    key = (block_id, context, tuple(candidates), frozenset(counters.items()))
    plan = _plans.get(key)
    if plan is None:
        posts = posteriors(candidates, counters, context, get_setting("OPTIMIZE_PRIOR_TRIALS"))
        plan = _Plan(posts, dominant(posts, probability=get_setting("OPTIMIZE_STOP_PROBABILITY"),
                                     min_trials=get_setting("OPTIMIZE_STOP_MIN_TRIALS")))
        if len(_plans) >= PLAN_LIMIT:
            _plans.clear()
        _plans[key] = plan
    return plan


def optimize(optimizer: Optimizer, visitor: Any, block_id: str,
             candidates: list[str]) -> tuple[str, str, str] | None:
    """(variant, reason, context key) among ``candidates`` (matching variants and the default),
    or None when there is nothing to choose or the counters cannot be read."""
    if len(candidates) < 2:
        return None  # (``decide`` asks only when the setting is on and not for a preview)
    counters = block_counters(visitor, block_id)
    if counters is None:
        return None
    context = context_key(optimizer, visitor)
    plan = _plan(block_id, context, candidates, counters)
    if plan.winner is not None:
        return plan.winner, "optimize-stop", context
    variant, reason = choose(plan.posts, visit_uniform(visitor, block_id), min_share=optimizer.min_share,
                             stop_probability=1.0, stop_min_trials=0, winner=None)
    return variant, reason, context

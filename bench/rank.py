"""RankedBlock render cost: a RankedBlock of 20 cards against a plain list of the same 20 cards.

In one process and one run: an engagement model is trained on planted behaviour (video fans
and article readers), then, interleaved, for many requests each:

  (a) the RankedBlock rendered for a known visitor (profile load, one batched score of the 20
      items, reordering, tracker wrappers);
  (b) a ListBlock of the same 20 CardBlocks rendered as the editor ordered them.

Reported: median render of (a) and (b) and their ratio; the median time to score 20 items
(``rank``: feature matrix, one predict call, argsort) and, for comparison, scikit-learn's own
``predict_proba`` on the same rows. Budget: scoring 20 items under 1 ms. Timing never fails the
run; wrong results (no reordering, more than one predict call a render) raise.

    .venv/bin/python bench/rank.py [--renders 2000] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings.test")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client, RequestFactory  # noqa: E402
from django.utils import timezone  # noqa: E402
from wagtail import blocks  # noqa: E402

from microadjust_cms.learning import scoring  # noqa: E402
from microadjust_cms.learning.engagement import load_estimator, train_model  # noqa: E402
from microadjust_cms.learning.models import EngagementModel  # noqa: E402
from microadjust_cms.rendering.ranked_blocks import RankedBlock  # noqa: E402
from microadjust_cms.tracking.models import Event  # noqa: E402
from microadjust_cms.visitor.context import VisitorContext, visitor_cookie_signer  # noqa: E402
from project.demo.blocks import CardBlock  # noqa: E402

N_ITEMS = 20
BUDGET_SCORE_MS = 1.0
KINDS = ("video", "article", "deal", "howto")
TAGS = ("travel", "food", "budget", "family", "outdoors")
VISITOR = "f" * 32


def plant(visitors: int = 300, visits: int = 3, seed: int = 7) -> None:
    """Video fans (phones) click videos; readers (desktops) dwell on articles; everybody
    sometimes clicks a deal; positions matter a little (the top is seen more)."""
    rng = random.Random(seed)
    now = timezone.now()
    events = []
    for number in range(visitors):
        fan = number % 2 == 0
        visitor = f"{'fan' if fan else 'reader'}{number}"
        for _visit in range(visits):
            start = now - timedelta(days=rng.uniform(0.1, 20))
            events.append(Event(visitor_id=visitor, type="pageview", occurred_at=start, page_id=1,
                                device="mobile" if fan else "desktop"))
            for position in range(8):
                kind, tag = rng.choice(KINDS), rng.choice(TAGS)
                at = start + timedelta(seconds=4 + 15 * position)
                common = dict(visitor_id=visitor, page_id=1, block_id=f"b-{kind}-{tag}", variant="editor",
                              content_type=kind, tags=tag)
                events.append(Event(type="impression", occurred_at=at, position=position, **common))
                liked = (kind == "video") if fan else (kind == "article")
                chance = (0.7 if liked else 0.08 if kind == "deal" else 0.03) * (1 - position / 16)
                if rng.random() < chance:
                    if fan or kind == "deal":
                        events.append(Event(type="click", occurred_at=at + timedelta(seconds=2), **common))
                    else:
                        events.append(Event(type="dwell", occurred_at=at + timedelta(seconds=9),
                                            value=rng.randint(10_000, 40_000), **common))
    Event.objects.bulk_create(events, batch_size=2000)


def items(rng: random.Random) -> list[tuple[str, str, dict]]:
    return [(KINDS[i % 4], rng.choice(TAGS), {"title": f"Card {i}", "text": "Some text about it.",
                                             "link_label": "Open", "link_url": f"#card-{i}"})
            for i in range(N_ITEMS)]


#: The fan browses on a phone, as the planted video fans do (the model reads the device class).
FAN_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")


def visitor_request(factory: RequestFactory):
    request = factory.get("/", HTTP_USER_AGENT=FAN_UA)
    request.COOKIES["ma_vid"] = visitor_cookie_signer().sign(VISITOR)
    request.visitor = VisitorContext(request)
    return request


def make_fan() -> None:
    """The benchmark visitor clicked video cards: their profile's affinity says video."""
    client = Client(HTTP_USER_AGENT=FAN_UA)
    client.cookies["ma_vid"] = visitor_cookie_signer().sign(VISITOR)
    now_ms = int(time.time() * 1000)
    events = [{"type": t, "t": now_ms, "block": f"v{i}", "variant": "editor", "kind": "video", "pos": i}
              for i in range(5) for t in ("impression", "click")]
    response = client.post("/microadjust/collect/", json.dumps({"v": 1, "events": events}),
                           content_type="application/json", HTTP_ORIGIN="http://testserver")
    assert response.status_code == 204, response.content


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def run(renders: int, out: Path) -> dict:
    call_command("migrate", run_syncdb=True, verbosity=0)
    plant()
    started = time.perf_counter()
    model_row = train_model()
    train_seconds = time.perf_counter() - started
    assert model_row.active, str(model_row)
    make_fan()

    rng = random.Random(1)
    cards = items(rng)
    ranked_block = RankedBlock(CardBlock())
    plain_block = blocks.ListBlock(CardBlock())
    ranked_value = ranked_block.to_python({"block_id": "bench", "options": {"highlight_top": True}, "items": [
        {"type": "item", "id": f"{i:08d}-0000-0000-0000-000000000000",
         "value": {"content": card, "content_type": kind, "tags": tag}} for i, (kind, tag, card) in enumerate(cards)]})
    plain_value = plain_block.to_python([card for _k, _t, card in cards])
    factory = RequestFactory()

    # Correctness: reordered for the fan, one predict call a render.
    model = scoring.model_cache.get()
    calls = []
    predict = model.predict
    model.predict = lambda X: calls.append(len(X)) or predict(X)
    request = visitor_request(factory)
    html = str(ranked_block.render(ranked_value, {"request": request}))
    model.predict = predict
    assert calls == [N_ITEMS], calls
    first_kind = html.split('data-ma-kind="', 1)[1].split('"', 1)[0]
    assert first_kind == "video", f"the fan's top card is {first_kind}"
    assert request.visitor.adjustments and request.visitor.adjustments[0].reason == "model"

    ranked_times, plain_times = [], []
    for _ in range(30):  # warm-up
        ranked_block.render(ranked_value, {"request": visitor_request(factory)})
        plain_block.render(plain_value, {"request": visitor_request(factory)})
    for _ in range(renders):
        request = visitor_request(factory)
        t0 = time.perf_counter()
        ranked_block.render(ranked_value, {"request": request})
        t1 = time.perf_counter()
        request = visitor_request(factory)
        t2 = time.perf_counter()
        plain_block.render(plain_value, {"request": request})
        t3 = time.perf_counter()
        ranked_times.append(t1 - t0)
        plain_times.append(t3 - t2)

    # Scoring alone: the visitor's vector is built once a request; 20 items scored in one call.
    request = visitor_request(factory)
    model_items = ranked_value.items_for_model()
    scoring.rank(request.visitor, model_items)  # vector memoized, as on a render
    score_times, sklearn_times = [], []
    estimator = load_estimator(EngagementModel.objects.get(active=True).estimator)
    X = model.matrix(scoring.visitor_vector(request.visitor, model), model_items)
    np.testing.assert_allclose(model.predict(X), estimator.predict_proba(X)[:, 1], rtol=1e-9)
    for _ in range(renders):
        t0 = time.perf_counter()
        scoring.rank(request.visitor, model_items)
        t1 = time.perf_counter()
        estimator.predict_proba(X)
        t2 = time.perf_counter()
        score_times.append(t1 - t0)
        sklearn_times.append(t2 - t1)

    ranked_ms, plain_ms = median_ms(ranked_times), median_ms(plain_times)
    result = {
        "benchmark": "bench/rank.py",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(), "scikit_learn": sklearn.__version__,
        "machine": platform.machine(), "cpus": os.cpu_count(),
        "renders": renders, "items": N_ITEMS,
        "model": {"version": model_row.version, "training_rows": model_row.training_rows,
                  "positives": model_row.positives, "auc": round(model_row.auc, 4),
                  "log_loss": round(model_row.log_loss, 4), "trees": len(estimator._predictors),
                  "features": len(model_row.feature_names), "train_seconds": round(train_seconds, 2)},
        "median_ms": {"ranked_block": round(ranked_ms, 4), "plain_list": round(plain_ms, 4),
                      "score_20_items": round(median_ms(score_times), 4),
                      "sklearn_predict_proba_20_items": round(median_ms(sklearn_times), 4)},
        "ratio_ranked_to_plain": round(ranked_ms / plain_ms, 3),
        "budget_score_ms": BUDGET_SCORE_MS,
        "score_within_budget": median_ms(score_times) < BUDGET_SCORE_MS,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=2000, help="timed renders per case (default 2000)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "rank.json")
    args = parser.parse_args(argv)
    result = run(args.renders, args.out)
    print(json.dumps(result, indent=2))
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Planted behaviour for the engagement model: video fans click videos, readers dwell on articles."""

import random
from datetime import timedelta

from django.utils import timezone

from microadjust_cms.tracking.models import Event

BLOCKS = [("vid-a", "video", "travel"), ("vid-b", "video", "howto"),
          ("art-a", "article", "travel"), ("art-b", "article", "budget")]


def plant(visitors: int = 40, visits: int = 3, seed: int = 1, now=None) -> list[Event]:
    """Half the visitors (``fan<i>``, mostly phones) click video blocks; the other half
    (``reader<i>``, mostly desktops) dwell 15-40 s on article blocks. Visits are spread over the last ten days."""
    rng = random.Random(seed)
    now = now or timezone.now()
    events = []
    for number in range(visitors):
        fan = number % 2 == 0
        visitor = f"{'fan' if fan else 'reader'}{number}"
        for _visit in range(visits):
            start = now - timedelta(days=rng.uniform(0.1, 10))
            # Mostly phones for fans and desktops for readers, not always: what a visitor clicked
            # must tell more than the device does.
            mobile = rng.random() < (0.7 if fan else 0.3)
            events.append(Event(visitor_id=visitor, type="pageview", occurred_at=start, page_id=1,
                                device="mobile" if mobile else "desktop"))
            order = rng.sample(BLOCKS, len(BLOCKS))
            for position, (block, kind, tag) in enumerate(order):
                at = start + timedelta(seconds=5 + position * 20)
                common = dict(visitor_id=visitor, page_id=1, block_id=block, variant="editor",
                              content_type=kind, tags=tag)
                events.append(Event(type="impression", occurred_at=at, position=position, **common))
                likes = (kind == "video") if fan else (kind == "article")
                if likes and rng.random() < 0.85:
                    if fan:
                        events.append(Event(type="click", occurred_at=at + timedelta(seconds=3), **common))
                    else:
                        seconds = rng.uniform(15, 40)
                        events += [Event(type="dwell", occurred_at=at + timedelta(seconds=5 * (k + 1)),
                                         value=int(seconds * 1000 / 2), **common) for k in range(2)]
                elif rng.random() < 0.05:
                    events.append(Event(type="dwell", occurred_at=at + timedelta(seconds=4), value=1500,
                                        **common))
    Event.objects.bulk_create(events)
    return events

"""Tracked events, as the collect endpoint stores them."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Event(models.Model):
    """One tracked interaction, stored durably (the collect endpoint writes these in batches).

    No IP address or User-Agent is kept: the visitor is the pseudonymous cookie id (or ``u<pk>``
    for a logged-in user). Rows older than ``EVENT_RETENTION_DAYS`` are purged.
    """

    class Type(models.TextChoices):
        PAGEVIEW = "pageview", _("Page view")
        IMPRESSION = "impression", _("Block impression")
        DWELL = "dwell", _("Dwell on a block")
        SCROLL = "scroll", _("Scroll depth milestone")
        CLICK = "click", _("Click in a block")
        ABANDON = "abandon", _("Block abandoned")
        CONVERSION = "conversion", _("Conversion")

    visitor_id = models.CharField(max_length=40)
    type = models.CharField(max_length=16, choices=Type.choices)
    occurred_at = models.DateTimeField(help_text=_("When the browser saw it (clamped to a day of "
                                                   "server time)."))
    received_at = models.DateTimeField(auto_now_add=True)
    page_id = models.PositiveIntegerField(null=True, blank=True)
    path = models.CharField(max_length=200, blank=True)
    previous_path = models.CharField(max_length=200, blank=True)
    block_id = models.CharField(max_length=64, blank=True)
    variant = models.CharField(max_length=50, blank=True)
    #: Dwell in milliseconds, scroll depth in percent; empty for other types.
    value = models.PositiveIntegerField(null=True, blank=True)
    #: Goal name for conversions, the clicked element's label for clicks.
    name = models.CharField(max_length=100, blank=True)
    #: What the block holds, as it declared it: a content type and space-separated tags.
    content_type = models.CharField(max_length=32, blank=True)
    tags = models.CharField(max_length=170, blank=True)
    #: The device class of the browser that sent the batch (mobile, tablet, desktop, bot): the
    #: User-Agent itself is never stored.
    device = models.CharField(max_length=8, blank=True)
    #: Where the block stood: its position in a RankedBlock (``data-ma-pos``), else its index
    #: among the page's tracked blocks; 0 first. Empty for page events.
    position = models.PositiveSmallIntegerField(null=True, blank=True)
    #: The visitor's segments (rule and cluster slugs, space-separated) when the page was
    #: rendered, as ``{% microadjust_tracker %}`` stamped them; empty on pages that adjusted
    #: nothing. Analytics break figures down by them (``analytics.rollups``).
    segments = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        verbose_name = _("event")
        indexes = [
            models.Index(fields=["visitor_id", "occurred_at"], name="ma_event_visitor"),
            models.Index(fields=["block_id", "type", "occurred_at"], name="ma_event_block"),
            models.Index(fields=["page_id", "type", "occurred_at"], name="ma_event_page"),
            models.Index(fields=["occurred_at"], name="ma_event_time"),
        ]

    def __str__(self) -> str:
        return f"{self.type} by {self.visitor_id} at {self.occurred_at:%Y-%m-%d %H:%M:%S}"


class LoadedBatch(models.Model):
    """A batch id the event loader has written (in the same transaction as its events): a
    batch delivered again, after a loader stopped between commit and acknowledgement, is
    skipped. Kept ``EVENT_LOADED_BATCH_RETENTION_DAYS``."""

    batch_id = models.CharField(max_length=32, primary_key=True)
    loaded_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = _("loaded event batch")

    def __str__(self) -> str:
        return self.batch_id

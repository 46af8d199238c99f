"""``manage.py microadjust_rollup [--from YYYY-MM-DD]``: refresh the analytics rollups now."""

from __future__ import annotations

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from microadjust_cms.analytics.rollups import mark_dirty
from microadjust_cms.jobs.rollups import describe, refresh_rollups


class Command(BaseCommand):
    help = ("Rebuild the analytics rollups that may have changed since the last refresh, as the "
            "scheduled job does (MICROADJUST_ROLLUP_SCHEDULE); --from rebuilds from a day on.")

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="since", default=None, metavar="YYYY-MM-DD",
                            help="also rebuild every day from this one (site time zone)")

    def handle(self, *args, since=None, **options):
        if since:
            try:
                day = datetime.strptime(since, "%Y-%m-%d")
            except ValueError:
                raise CommandError(f"--from must be a date as YYYY-MM-DD, not {since!r}") from None
            with transaction.atomic():
                mark_dirty(timezone.make_aware(day, timezone.get_default_timezone()))
        self.stdout.write(describe(refresh_rollups()))

"""``manage.py microadjust_purge_events [--days N]``: apply the event retention limit now."""

from django.core.management.base import BaseCommand, CommandError

from microadjust_cms.conf import get_setting
from microadjust_cms.retention import purge_events


class Command(BaseCommand):
    help = "Delete tracked events older than MICROADJUST_EVENT_RETENTION_DAYS (default 180)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None,
                            help="keep this many days instead of the setting")

    def handle(self, *args, days=None, **options):
        if days is not None and days < 0:
            raise CommandError("--days must be 0 or more")
        deleted = purge_events(days=days)
        kept = get_setting("EVENT_RETENTION_DAYS") if days is None else days
        self.stdout.write(f"Deleted {deleted} events older than {kept} days.")

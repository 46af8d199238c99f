"""``manage.py microadjust_forget <visitor id | u<user id> | username> [--no-drain]``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from microadjust_cms.jobs.erasure import UnknownVisitor, forget_visitor, visitor_id_for
from microadjust_cms.visitor.stores import StoreUnavailable


class Command(BaseCommand):
    help = ("Forget a visitor (a data subject's erasure request): delete their events and "
            "experiment exposures, clear their profile, and rebuild the rollups they were in.")

    def add_arguments(self, parser):
        parser.add_argument("visitor", help="a visitor id (the ma_vid cookie's value before the "
                                            "signature), u<user id>, or a username")
        parser.add_argument("--no-drain", action="store_true",
                            help="with the Redis Streams sink, do not load the waiting batches first")

    def handle(self, *args, visitor, no_drain=False, **options):
        try:
            erasure = forget_visitor(visitor_id_for(visitor), drain=not no_drain)
        except UnknownVisitor as exc:
            raise CommandError(str(exc)) from None
        except StoreUnavailable as exc:
            raise CommandError(f"Events and exposures were deleted, but the profile store is "
                               f"unavailable ({exc}): run this again once it is back.") from None
        self.stdout.write(erasure.describe())

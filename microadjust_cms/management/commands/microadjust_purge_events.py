"""``manage.py microadjust_purge_events [--days N]``: apply the event retention limit now."""

from django.core.management.base import CommandError

from microadjust_cms.management.job_command import JobCommand


class Command(JobCommand):
    help = ("Delete tracked events older than MICROADJUST_EVENT_RETENTION_DAYS (default 180), "
            "as the nightly purge job does.")
    kind = "purge"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--days", type=int, default=None,
                            help="keep this many days instead of the setting")

    def job_options(self, options):
        if options["days"] is not None and options["days"] < 0:
            raise CommandError("--days must be 0 or more")
        return {"days": options["days"]}

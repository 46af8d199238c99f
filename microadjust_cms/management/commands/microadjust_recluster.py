"""``manage.py microadjust_recluster [--k N] [--method kmeans|hierarchical]``: cluster visitors now."""

from django.core.management.base import CommandError

from microadjust_cms.management.job_command import JobCommand


class Command(JobCommand):
    help = "Cluster visitors by behaviour now, as the nightly recluster job does."
    kind = "recluster"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--k", type=int, default=None,
                            help="number of clusters (default: chosen by silhouette in the configured range)")
        parser.add_argument("--method", choices=["kmeans", "hierarchical"], default=None,
                            help="clustering method (default: the configured one)")

    def job_options(self, options):
        if options["k"] is not None and options["k"] < 2:
            raise CommandError("--k must be 2 or more (clusters need at least two groups)")
        return {"k": options["k"], "method": options["method"]}

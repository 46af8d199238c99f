"""``manage.py microadjust_train``: train the engagement model now."""

from microadjust_cms.management.job_command import JobCommand


class Command(JobCommand):
    help = "Train the engagement model now, as the nightly train job does."
    kind = "train"

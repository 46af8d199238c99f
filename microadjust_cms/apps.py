from django.apps import AppConfig


class MicroadjustConfig(AppConfig):
    name = "microadjust_cms"
    label = "microadjust_cms"
    verbose_name = "Micro-adjustments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  (registers system checks)
            faults,  # noqa: F401  (counts unhandled exceptions by class)
        )
        from .experiments.models import connect_signals

        connect_signals()  # the running experiments are re-read when they or their flags change

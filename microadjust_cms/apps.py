from django.apps import AppConfig


class MicroadjustConfig(AppConfig):
    """The composition root: the one place that wires the packages together. Lower layers expose
    extension points (the signal registry's ``contribute``, the visitor's holdout rule and
    after-response hooks, model-change receivers); higher layers are plugged in here, so no
    package imports one above it (``tests/test_layers.py``)."""

    name = "microadjust_cms"
    label = "microadjust_cms"
    verbose_name = "Micro-adjustments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  (registers system checks)
            faults,  # noqa: F401  (counts unhandled exceptions by class)
        )
        from .analytics import rollups  # noqa: F401  (follows tracking.hooks.events_changed)
        from .experiments import recording, runtime
        from .experiments import signals as experiment_signals
        from .learning import scoring
        from .learning import signals as learning_signals
        from .rendering import stream_cache
        from .rendering.blocks import PersonalizedBlock
        from .segments import clusters, membership
        from .segments import signals as segment_signals
        from .signals import builtin
        from .signals.registry import registry
        from .visitor import context

        # Each package's signals, registered on the registry's first use (before the sites' hooks).
        for register in (builtin.register_builtins, segment_signals.register, learning_signals.register,
                         experiment_signals.register):
            registry.contribute(register)
        # Per-process copies re-read when their rows change (``process_copies``).
        runtime.connect_signals()  # experiments and their waffle flags
        membership.connect_signals()  # rule segments
        clusters.connect_signals()  # clustering runs and clusters
        scoring.connect_signals()  # engagement models
        # The global holdout, and what experiments write once the response is built.
        context.set_holdout_rule(runtime.held_out)
        if recording.after_response not in context.after_response_hooks:
            context.after_response_hooks.append(recording.after_response)
        # StreamFields holding personalized blocks decode those once per stored text.
        stream_cache.install(PersonalizedBlock)

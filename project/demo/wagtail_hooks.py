"""The demo site adds its own signal through the ``register_microadjust_signals`` hook."""

from wagtail import hooks

from microadjust_cms import Signal


def _is_subscriber(visitor, _param):
    return visitor.request.COOKIES.get("newsletter") == "subscribed"


@hooks.register("register_microadjust_signals")
def register_demo_signals(registry):
    registry.register(Signal(
        "newsletter_subscriber", "boolean", _is_subscriber, "Newsletter subscriber",
        help_text="The site's own 'newsletter' cookie says 'subscribed'."))

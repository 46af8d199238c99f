from wagtail.admin.panels import FieldPanel
from wagtail.fields import StreamField
from wagtail.models import Page

from microadjust_cms.rendering.preview import PersonalizedPreviewMixin

from .blocks import body_blocks


class HomePage(PersonalizedPreviewMixin, Page):
    body = StreamField(body_blocks(), blank=True)
    content_panels = Page.content_panels + [FieldPanel("body")]
    template = "demo/page.html"


class ArticlePage(PersonalizedPreviewMixin, Page):
    body = StreamField(body_blocks(), blank=True)
    content_panels = Page.content_panels + [FieldPanel("body")]
    template = "demo/page.html"

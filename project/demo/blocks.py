"""The demo site's own content blocks, and personalized versions built around them."""

from wagtail import blocks

from microadjust_cms.rendering.blocks import PersonalizedBlock
from microadjust_cms.rendering.ranked_blocks import RankedBlock


class HeroBlock(blocks.StructBlock):
    heading = blocks.CharBlock(max_length=120)
    text = blocks.TextBlock(required=False)
    button_label = blocks.CharBlock(required=False, max_length=40)
    button_url = blocks.CharBlock(required=False, max_length=300)

    class Meta:
        icon = "pick"
        template = "demo/blocks/hero.html"


class CardBlock(blocks.StructBlock):
    title = blocks.CharBlock(max_length=120)
    text = blocks.TextBlock(required=False)
    link_label = blocks.CharBlock(required=False, max_length=40)
    link_url = blocks.CharBlock(required=False, max_length=300)

    class Meta:
        icon = "doc-full"
        template = "demo/blocks/card.html"


class BannerBlock(blocks.StructBlock):
    """Empty text renders nothing: a personalized banner can show to some visitors only."""

    text = blocks.CharBlock(required=False, max_length=200)
    link_url = blocks.CharBlock(required=False, max_length=300)

    class Meta:
        icon = "warning"
        template = "demo/blocks/banner.html"


class ModuleBlock(blocks.StructBlock):
    """A course module: its explanation, an optional video, and the "finished" button whose
    ``data-ma-goal="complete"`` is the course's conversion (the seed's learner case)."""

    heading = blocks.CharBlock(max_length=120)
    text = blocks.RichTextBlock()
    video_url = blocks.CharBlock(required=False, max_length=300)
    video_label = blocks.CharBlock(required=False, max_length=80)

    class Meta:
        icon = "doc-full-inverse"
        template = "demo/blocks/module.html"


class RecommendationsBlock(RankedBlock):
    """Cards in order of predicted engagement for each visitor (the seed's e-commerce case)."""

    heading = blocks.CharBlock(max_length=80, default="Recommended for you")

    def __init__(self, **kwargs):
        super().__init__(CardBlock(), **kwargs)

    class Meta:
        template = "demo/blocks/recommendations.html"
        label = "Recommended for you (ranked)"
        icon = "list-ol"


def body_blocks() -> list:
    return [
        ("heading", blocks.CharBlock(form_classname="title", template="demo/blocks/heading.html")),
        ("paragraph", blocks.RichTextBlock()),
        ("card", CardBlock()),
        ("personalized_hero", PersonalizedBlock(HeroBlock(), label="Personalized hero")),
        ("personalized_card", PersonalizedBlock(CardBlock(), label="Personalized card",
                                                content_type="article")),
        ("personalized_banner", PersonalizedBlock(BannerBlock(), label="Personalized banner")),
        ("personalized_text", PersonalizedBlock(blocks.RichTextBlock(), label="Personalized text",
                                                content_type="news", tags=("reading",))),
        ("recommendations", RecommendationsBlock()),
        ("course_module", PersonalizedBlock(ModuleBlock(), label="Course module",
                                            content_type="lesson", tags=("course",))),
    ]

"""Create the demo pages, a rule segment and an admin login (idempotent)."""

import secrets
import uuid

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from wagtail.models import Page, Site

from microadjust_cms.rendering.block_ids import as_saved
from microadjust_cms.segments.models import Segment
from project.demo.models import ArticlePage, HomePage


def rule(signal, op, value=None, **extra):
    node = {"signal": signal, "op": op, **extra}
    if value is not None:
        node["value"] = value
    return node


def personalized(block_type, block_id, variants, default, triggers=None, optimize=None):
    value = {"block_id": block_id, "default": default, "triggers": triggers or {}, "variants": [
        {"name": name, "segment": segment, "condition": condition, "content": content}
        for name, segment, condition, content in variants
    ]}
    if optimize:
        value["optimize"] = {"enabled": True, "context": "cluster", "min_share": 0.05, **optimize}
    return {"type": block_type, "id": str(uuid.uuid4()), "value": value}


def hero(heading, text, label="", url=""):
    return {"heading": heading, "text": text, "button_label": label, "button_url": url}


def card(title, text, label="", url=""):
    return {"title": title, "text": text, "link_label": label, "link_url": url}


def recommendations():
    """The RankedBlock: eight cards in the editor's order; each visitor sees them ordered by the
    engagement model (after ``simulate_traffic`` and a training run), recent clicks first."""
    items = [
        ("video", "travel", card("Watch: ferry crossing at dawn", "Four minutes on deck.", "Play", "#ferry")),
        ("article", "travel", card("The harbour, ten years on", "A long read on the rebuilt waterfront.",
                                   "Read", "#harbour")),
        ("deal", "budget", card("Deal: 30 % off city passes", "This week only.", "Get the deal", "#pass")),
        ("howto", "budget", card("How to plan a weekend on a budget", "Ten steps, one spreadsheet.",
                                 "Start", "#budget")),
        ("video", "food", card("Watch: the night market", "Street food in six minutes.", "Play", "#market")),
        ("article", "food", card("Why the old fish hall closed", "The story behind the empty stalls.",
                                 "Read", "#fishhall")),
        ("deal", "food", card("Deal: two-for-one harbour lunch", "Weekdays until Friday.", "Book", "#lunch")),
        ("howto", "travel", card("How to get around without a car", "Ferries, bikes and trams.",
                                 "Read the guide", "#getaround")),
    ]
    return {"type": "recommendations", "id": str(uuid.uuid4()), "value": {
        "block_id": "recommended", "heading": "Recommended for you",
        "options": {"highlight_top": True},
        "items": [{"type": "item", "id": str(uuid.uuid4()),
                   "value": {"content": content, "content_type": kind, "tags": tags}}
                  for kind, tags, content in items]}}


def add_recommendations(home):
    """Demos loaded before the RankedBlock existed get it too (after the greeting)."""
    raw = list(home.body.raw_data)
    if any(block.get("type") == "recommendations" for block in raw):
        return
    at = next((i + 1 for i, block in enumerate(raw) if block.get("type") == "personalized_text"), len(raw))
    raw.insert(at, recommendations())
    home.body = as_saved(HomePage.body.field, raw)
    home.save_revision().publish()


def home_body():
    return [
        personalized("personalized_banner", "mobile-banner", [
            ("mobile", "", rule("device", "eq", "mobile"),
             {"text": "Get the app: reading on the go is faster there.", "link_url": "#app"}),
        ], {"text": "", "link_url": ""}),
        personalized("personalized_hero", "welcome-hero", [
            ("returning", "", rule("is_returning", "eq", True),
             hero("Welcome back!", "Pick up where you left off: new stories since your last visit.",
                  "What's new", "#new")),
        ], hero("Welcome to the demo", "Personalized content, rendered on the server.",
                "Take the tour", "#tour")),
        personalized("personalized_text", "greeting", [
            ("morning", "", rule("time_of_day", "eq", "morning"), "<p>Good morning! Coffee and the headlines.</p>"),
            ("evening", "", {"any": [rule("time_of_day", "eq", "evening"),
                                     rule("time_of_day", "eq", "night")]},
             "<p>Good evening! Long reads for a quiet night.</p>"),
        ], "<p>Good afternoon! Here is what is happening.</p>"),
        recommendations(),
        personalized("personalized_card", "fresh-content", [
            ("repeat-view", "", rule("page_views", "gte", 2),
             card("Fresh since you last looked", "You have seen this page before, so here are "
                  "the three newest stories instead of the evergreen guide.", "Newest", "#newest")),
        ], card("Start here", "Our evergreen guide to the site.", "Read the guide", "#guide")),
        personalized("personalized_card", "newsletter-offer", [
            ("newsletter", "", rule("utm_source", "eq", "newsletter"),
             card("Thanks for reading our newsletter", "Subscribers get the long-read edition: "
                  "here is this week's.", "This week's long read", "#longread")),
        ], card("Subscribe to the newsletter", "One email a week, the best of the site.",
                "Subscribe", "#subscribe")),
        {"type": "paragraph", "id": str(uuid.uuid4()),
         "value": "<p>Everything above this line is a personalized block. Edit them in the admin.</p>"},
    ]


IN_DEPTH = ("<h3>The whole story</h3><p>You read us closely, so here is the in-depth version: "
            "the background, the numbers behind the headline, what the people involved said and "
            "what happens next.</p><p>Three sources, two charts and a timeline follow.</p>")
SUMMARY = ("<h3>In brief</h3><p>The short version: what happened and why it matters, in three "
           "sentences.</p>")


HARBOUR_TEXT = ("<p>The harbour was rebuilt over ten years: new quays, a ferry terminal and a "
                "park where the coal sheds stood. The engineers had to work around the tides, "
                "the fishing fleet and a budget that halved in the third year; the city council "
                "changed its mind twice about the height of the sea wall. What came out of it is "
                "a waterfront people use every day, and a lesson in planning for water that "
                "rises a little more each decade.</p>")


def article_body():
    return [
        {"type": "paragraph", "id": str(uuid.uuid4()),
         "value": "<p>An article with a section only loyal readers see.</p>"},
        # The seed's news case: engaged readers get depth, casual readers the summary.
        personalized("personalized_text", "story-depth", [
            ("in-depth", "", rule("engagement_level", "eq", "high"), IN_DEPTH),
        ], SUMMARY),
        # Scrolled past without a click: swapped in place for a lighter suggestion.
        personalized("personalized_card", "related-reading", [
            ("second-chance", "", rule("abandoned", "eq", True, param="this"),
             card("Short on time?", "Here is the three-minute summary instead.", "Read the summary",
                  "#summary")),
        ], card("Related: the long read", "Forty minutes on how the city rebuilt its harbour.",
                "Read on", "#longread"), triggers={"on_abandon": "best"}),
        # Enough text to scroll the related card away (and see it swapped on the way back up).
        *[{"type": "paragraph", "id": str(uuid.uuid4()), "value": HARBOUR_TEXT} for _ in range(6)],
        personalized("personalized_card", "loyal-readers-section", [
            ("loyal", "loyal-readers", {},
             card("For our loyal readers", "You have been here three times or more: join the "
                  "readers' panel.", "Join the panel", "#panel")),
        ], card("About this site", "New here? This is what we write about.", "About", "#about")),
    ]


def module(heading, text, video_url="", video_label=""):
    return {"heading": heading, "text": text, "video_url": video_url, "video_label": video_label}


#: A learner who scrolled past the module without engaging, or came back to it.
STRUGGLING = {"any": [rule("abandoned", "eq", True, param="this"), rule("page_views", "gte", 2)]}


def course_body():
    """The seed's learner case: each module offers a learner who abandoned it or is back on it a
    supplementary video or a simpler explanation; auto-optimize learns which one gets each
    cluster of learners to finish the module (goal: the "complete" conversion)."""
    modules = [
        ("tides-1", "Module 1: why the sea rises twice a day",
         "<p>The moon's gravity pulls the ocean into two bulges, one facing the moon and one "
         "opposite it; the Earth turns beneath both, so most coasts see two high tides a day, "
         "about 12 hours 25 minutes apart.</p>",
         "<p>Simpler: the moon pulls the sea. The Earth spins, so each beach passes the "
         "'pulled' water twice a day. That is high tide.</p>", "#video-tides-1"),
        ("tides-2", "Module 2: reading a tide table",
         "<p>A tide table lists the times and heights of high and low water against chart "
         "datum; interpolate between them with the rule of twelfths to estimate the depth at "
         "any hour.</p>",
         "<p>Simpler: find today's date, read the time of high water and its height in metres. "
         "Halfway between high and low water, the sea is about halfway up.</p>", "#video-tides-2"),
    ]
    body = [{"type": "paragraph", "id": str(uuid.uuid4()),
             "value": "<p>A short course in two modules. Stuck? The page adapts.</p>"}]
    for block_id, heading, text, simpler, video in modules:
        body.append(personalized("course_module", block_id, [
            ("video", "", STRUGGLING, module(heading, text, video, "Watch a 3-minute explanation")),
            ("simpler", "", STRUGGLING, module(heading + " (the short version)", simpler)),
        ], module(heading, text), optimize={"goal": "complete"}))
    return body


def add_course(home):
    """The course page (demos loaded before it existed get it too)."""
    if ArticlePage.objects.filter(slug="course").exists():
        return
    course = ArticlePage(title="Course: the tides", slug="course",
                         body=as_saved(ArticlePage.body.field, course_body()))
    home.add_child(instance=course)
    course.save_revision().publish()


class Command(BaseCommand):
    help = "Load the demo content and create an admin login (prints it)."

    def handle(self, *args, **options):
        Segment.objects.update_or_create(slug="loyal-readers", defaults={
            "name": "Loyal readers",
            "description": "Visitors on their third visit or later.",
            "condition": {"all": [rule("visit_count", "gte", 3)]},
        })
        Segment.objects.update_or_create(slug="campaign-visitors", defaults={
            "name": "Campaign visitors",
            "description": "Arrived from any tagged campaign link.",
            "condition": {"any": [rule("utm_source", "exists"), rule("utm_campaign", "exists")]},
        })
        root = Page.get_first_root_node()
        home = HomePage.objects.first()
        if home is None:
            home = HomePage(title="Home", slug="home-demo",
                            body=as_saved(HomePage.body.field, home_body()))
            root.add_child(instance=home)
            home.save_revision().publish()
            article = ArticlePage(title="An article", slug="article",
                                  body=as_saved(ArticlePage.body.field, article_body()))
            home.add_child(instance=article)
            article.save_revision().publish()
        else:
            add_recommendations(home)
        add_course(home)
        Site.objects.update_or_create(is_default_site=True, defaults={
            "hostname": "localhost", "port": 80, "root_page": home, "site_name": "microadjust demo"})
        for page in Page.objects.filter(depth=2).exclude(pk=home.pk):
            if not page.get_children().exists() and page.specific_class is Page:
                page.delete()
        User = get_user_model()
        password = secrets.token_urlsafe(9)
        user, created = User.objects.get_or_create(username="admin", defaults={
            "email": "admin@example.com", "is_staff": True, "is_superuser": True})
        user.set_password(password)
        user.save()
        self.stdout.write(self.style.SUCCESS(
            f"Demo loaded. Admin: http://127.0.0.1:8000/admin/  user: admin  password: {password}"))

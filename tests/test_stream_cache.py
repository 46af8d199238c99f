"""The per-process cache of personalized blocks read from the database (``stream_cache``): a
published change shows at once, previews and drafts render what they contain, nothing one
request does to a block reaches another, and the cache stays within its limits."""

import copy
import json
import pickle

import pytest
from wagtail import blocks

from .conftest import DESKTOP_UA, MOBILE_UA
from .helpers import variants

BANNER = "mobile-banner"


class Card(blocks.StructBlock):
    title = blocks.CharBlock()
    body = blocks.RichTextBlock()
    items = blocks.ListBlock(blocks.CharBlock())
    more = blocks.StreamBlock([("text", blocks.TextBlock())])


class Noted(blocks.CharBlock):
    def to_python(self, value):
        return value.upper()


def _home():
    from project.demo.models import HomePage

    return HomePage.objects.get()


def _banner_text(html):
    start = html.index(f'data-ma-block="{BANNER}"')
    return html[start:html.index("</div>", start)]


def _edited_body(page, text):
    """The page's raw body (a plain copy) with the mobile banner's variant text replaced."""
    raw = json.loads(json.dumps(list(page.body.raw_data)))
    for child in raw:
        if isinstance(child["value"], dict) and child["value"].get("block_id") == BANNER:
            child["value"]["variants"][0]["content"]["text"] = text
    return raw


def _shared_entries():
    from microadjust_cms.rendering import stream_cache

    return len(stream_cache._entries)


def test_the_page_is_decoded_once_and_rendered_per_visitor(client, demo):
    from microadjust_cms.rendering.stream_cache import SharedStored

    first = client.get("/", HTTP_USER_AGENT=MOBILE_UA)
    assert variants(first)[BANNER] == "mobile"
    entries = _shared_entries()
    assert entries >= 1
    one, two = _home(), _home()
    banner_one = next(c.value for c in one.body if c.value.block_id == BANNER)
    banner_two = next(c.value for c in two.body if c.value.block_id == BANNER)
    # Each load has its own value, built on the one stored copy.
    assert banner_one is not banner_two
    assert type(banner_one._stored) is SharedStored and banner_one._stored is banner_two._stored
    # The same page, two visitors, in turn: each gets its own variant every time.
    for _ in range(2):
        assert "Get the app" in _banner_text(client.get("/", HTTP_USER_AGENT=MOBILE_UA).content.decode())
        assert variants(client.get("/", HTTP_USER_AGENT=DESKTOP_UA))[BANNER] == "default"
    assert _shared_entries() == entries  # every request after the first one: found


def test_a_published_change_shows_at_once(client, demo):
    home = demo["home"]
    assert "Get the app" in _banner_text(client.get("/", HTTP_USER_AGENT=MOBILE_UA).content.decode())
    home.body = _edited_body(home, "Try the new app")
    home.save_revision()  # a draft: visitors still get the live content
    assert "Get the app" in _banner_text(client.get("/", HTTP_USER_AGENT=MOBILE_UA).content.decode())
    home.get_latest_revision().publish()
    assert "Try the new app" in _banner_text(client.get("/", HTTP_USER_AGENT=MOBILE_UA).content.decode())


def test_content_saved_without_a_revision_shows_at_once(client, demo):
    """The key is the stored text itself: any change of it is seen, revision or not."""
    from project.demo.models import HomePage

    home = demo["home"]
    assert "Get the app" in _banner_text(client.get("/", HTTP_USER_AGENT=MOBILE_UA).content.decode())
    HomePage.objects.filter(pk=home.pk).update(body=_edited_body(home, "Written around the blocks"))
    html = client.get("/", HTTP_USER_AGENT=MOBILE_UA).content.decode()
    assert "Written around the blocks" in _banner_text(html)


def test_previews_and_drafts_render_what_they_contain(client, demo, admin_client):
    home = demo["home"]
    assert variants(client.get("/", HTTP_USER_AGENT=MOBILE_UA))[BANNER] == "mobile"
    entries = _shared_entries()
    home.body = _edited_body(home, "Draft text only editors see")
    revision = home.save_revision()

    draft = home.get_latest_revision_as_object()
    response = draft.make_preview_request(preview_mode="device:mobile")
    if hasattr(response, "render"):
        response.render()
    assert "Draft text only editors see" in _banner_text(response.content.decode())
    for url in (f"/admin/pages/{home.pk}/view_draft/",
                f"/admin/pages/{home.pk}/revisions/{revision.pk}/view/"):
        html = admin_client.get(url, HTTP_USER_AGENT=MOBILE_UA).content.decode()
        assert "Draft text only editors see" in _banner_text(html), url
    # Previews are built from the revision, never from (or into) the cache.
    assert _shared_entries() == entries
    assert "Get the app" in _banner_text(client.get("/", HTTP_USER_AGENT=MOBILE_UA).content.decode())


def test_stored_data_is_read_only_and_raw_edits_stay_private(client, demo):
    from microadjust_cms.rendering.stream_cache import SharedStored

    client.get("/", HTTP_USER_AGENT=MOBILE_UA)
    page = _home()
    banner = next(c.value for c in page.body if c.value.block_id == BANNER)
    with pytest.raises(TypeError, match="read only"):
        banner._stored["variants"][0]["content"]["text"] = "changed in place"
    with pytest.raises(TypeError, match="read only"):
        banner.raw_variants.clear()

    # Wagtail's raw data is editable in place (scripts and data migrations do it): a private copy.
    edited = _home()
    raw = list(edited.body.raw_data)
    item = next(c for c in raw if c["value"].get("block_id") == BANNER)
    assert type(item["value"]) is dict
    item["value"]["variants"][0]["content"]["text"] = "edited in this stream only"
    item["value"]["variants"] = item["value"]["variants"] + []
    assert "Get the app" in _banner_text(client.get("/", HTTP_USER_AGENT=MOBILE_UA).content.decode())
    assert type(next(c.value for c in _home().body if c.value.block_id == BANNER)._stored) is SharedStored

    # Dict access converts a plain copy: changing it changes nothing for the next request.
    banner["variants"][0]["content"]["text"] = "changed in one request"
    banner["default"]["text"] = "changed default"
    assert "Get the app" in _banner_text(client.get("/", HTTP_USER_AGENT=MOBILE_UA).content.decode())
    assert variants(client.get("/", HTTP_USER_AGENT=DESKTOP_UA))[BANNER] == "default"


def test_a_page_loaded_from_the_cache_saves_copies_and_pickles_as_plain_data(client, demo):
    from project.demo.models import HomePage

    client.get("/")
    page = _home()
    list(page.body)  # bound, as after rendering
    stored = json.loads(json.dumps(list(_home().body.raw_data)))
    assert json.loads(json.dumps(page.body.get_prep_value())) == stored
    restored = pickle.loads(pickle.dumps(page))
    assert json.loads(json.dumps(restored.body.get_prep_value())) == stored
    copied = copy.deepcopy(_home().body)
    assert json.loads(json.dumps(copied.get_prep_value())) == stored
    page.title = "Saved again"
    page.save_revision().publish()
    again = HomePage.objects.get()
    assert again.title == "Saved again"
    assert json.loads(json.dumps(list(again.body.raw_data))) == stored
    assert variants(client.get("/", HTTP_USER_AGENT=MOBILE_UA))[BANNER] == "mobile"


def test_the_cache_is_bounded(client, demo, monkeypatch):
    from microadjust_cms.rendering import stream_cache
    from project.demo.models import HomePage

    monkeypatch.setattr(stream_cache, "MAX_TEXTS", 2)
    home = demo["home"]
    for n in range(4):
        HomePage.objects.filter(pk=home.pk).update(body=_edited_body(home, f"Version {n}"))
        assert f"Version {n}" in _banner_text(client.get("/", HTTP_USER_AGENT=MOBILE_UA).content.decode())
        assert _shared_entries() <= 2
    assert stream_cache._total_chars == sum(len(e.text) for e in stream_cache._entries.values())
    for limit, value in (("MAX_TOTAL_CHARS", 1), ("MAX_TEXT_CHARS", 10)):  # no text fits, too long
        stream_cache.clear()
        monkeypatch.setattr(stream_cache, "MAX_TEXTS", 100)
        monkeypatch.setattr(stream_cache, limit, value)
        for _ in range(2):
            assert "Version 3" in _banner_text(client.get("/", HTTP_USER_AGENT=MOBILE_UA).content.decode())
        assert _shared_entries() == 0 and stream_cache._total_chars == 0
        monkeypatch.undo()


def test_other_reads_of_the_column_go_the_usual_way(demo):
    from wagtail.blocks import StreamValue

    from microadjust_cms.rendering.stream_cache import CachedFromDb
    from project.demo.models import ArticlePage, HomePage

    assert isinstance(HomePage._meta.get_field("body").__dict__["from_db_value"], CachedFromDb)
    assert isinstance(ArticlePage._meta.get_field("body").__dict__["from_db_value"], CachedFromDb)
    value = HomePage.objects.values_list("body", flat=True).get()
    assert isinstance(value, StreamValue) and any(c.value.block_id == BANNER for c in value
                                                  if c.block_type == "personalized_banner")
    # A key of the column is not the stream: Wagtail's own conversion, as before.
    first_type = HomePage.objects.values_list("body__0__type", flat=True).get()
    assert first_type.raw_text == json.loads(json.dumps(list(demo["home"].body.raw_data)))[0]["type"]


def test_texts_alike_at_both_ends_are_kept_apart():
    """The quick key (length, head, tail) is only a key: a hit needs the whole text equal."""
    from microadjust_cms.rendering import stream_cache

    owner, names = object(), frozenset({"p"})

    def text(middle):
        return json.dumps([{"type": "p", "value": {"block_id": "b", "pad": "x" * 100, "middle": middle},
                            "id": "i" * 80}])

    one, two = text("one"), text("two")
    assert len(one) == len(two) and one[:64] == two[:64] and one[-64:] == two[-64:]
    for _ in range(3):
        assert stream_cache.stream_data(owner, names, one)[0]["value"]["middle"] == "one"
        assert stream_cache.stream_data(owner, names, two)[0]["value"]["middle"] == "two"
    assert _shared_entries() == 2
    plain = json.dumps([{"type": "other", "value": {"middle": "three"}, "id": "i"}])
    assert stream_cache.stream_data(owner, names, plain)[0]["value"]["middle"] == "three"
    assert _shared_entries() == 2  # nothing to share: decoded as usual, not kept


def test_content_blocks_that_read_more_than_the_stored_data_convert_per_request():
    """Choosers read the database and some blocks change what they convert (TableBlock): their
    content is converted per request, from a plain copy of the shared stored data."""
    from wagtail.contrib.table_block.blocks import TableBlock
    from wagtail.images.blocks import ImageChooserBlock

    from microadjust_cms.rendering import stream_cache
    from microadjust_cms.rendering.blocks import PersonalizedBlock

    assert PersonalizedBlock(Card()).shares_conversions
    assert not PersonalizedBlock(ImageChooserBlock()).shares_conversions
    assert not PersonalizedBlock(Noted()).shares_conversions  # a site's own conversion

    table = PersonalizedBlock(TableBlock())
    assert not table.shares_conversions
    data = {"data": [["a", "b"]], "first_row_is_table_header": True, "first_col_is_header": False}
    stored = {"block_id": "table", "default": data,
              "variants": [{"name": "v", "condition": {"signal": "device", "op": "eq", "value": "mobile"},
                            "content": data, "id": "x"}]}
    entry = stream_cache._entry(frozenset({"t"}), [{"type": "t", "value": stored, "id": "1"}], "text")
    shared = entry.layout[0]["value"]
    for _ in range(2):
        value = table.to_python(shared)
        assert value.variant_content(0)["table_header_choice"] == "row"  # set by TableBlock.to_python
        assert value.default_content()["table_header_choice"] == "row"
    assert "table_header_choice" not in shared["default"]  # the shared data is unchanged


def _page_as_rendered(client, ua, **extra):
    response = client.get("/", HTTP_USER_AGENT=ua, **extra)
    assert response.status_code == 200
    visitor = response.wsgi_request.visitor
    return response.content.decode(), list(visitor.adjustments)


@pytest.mark.parametrize("ua", [MOBILE_UA, DESKTOP_UA])
@pytest.mark.parametrize("setting", [{}, {"MICROADJUST_ADJUSTMENTS_PER_PAGEVIEW": 1},
                                     {"MICROADJUST_EXPERIMENT_HOLDOUT": 1.0}])
def test_the_short_render_path_renders_what_render_for_does(demo, monkeypatch, settings, ua,
                                                              setting):
    """A shared value as loaded takes ``PersonalizedBlock._render_shared``; its page, its
    adjustments (caps and the holdout included) are those of the general ``render_for``."""
    from microadjust_cms.rendering.blocks import PersonalizedBlock, PersonalizedValue

    from .helpers import visitor_client

    for name, value in setting.items():
        setattr(settings, name, value)
    taken = []
    short = PersonalizedBlock._render_shared

    def counted(self, *args, **kwargs):
        taken.append(args[0].block_id)
        return short(self, *args, **kwargs)

    monkeypatch.setattr(PersonalizedBlock, "_render_shared", counted)
    fast = _page_as_rendered(visitor_client(), ua)
    held_out = "MICROADJUST_EXPERIMENT_HOLDOUT" in setting
    assert bool(taken) is not held_out  # a held-out visitor goes the general way
    monkeypatch.setattr(PersonalizedValue, "as_loaded", lambda self: False)
    general = _page_as_rendered(visitor_client(), ua)
    assert fast == general
    reasons = {reason for _block, _variant, reason in fast[1]}
    if "MICROADJUST_ADJUSTMENTS_PER_PAGEVIEW" in setting and ua == MOBILE_UA:
        assert "capped" in reasons  # the second matching block shows its default
    if held_out:
        assert reasons == {"holdout"}


def test_a_value_changed_after_loading_renders_as_changed(client, demo):
    """The short path serves only values as loaded: an edit to one (dict access) renders."""
    from django.template import Context

    from microadjust_cms.rendering.blocks import PersonalizedBlock

    client.get("/", HTTP_USER_AGENT=DESKTOP_UA)
    page = _home()
    child = next(c for c in page.body if c.value.block_id == BANNER)
    assert child.value._renders_shared and child.value.as_loaded()
    child.value["default"]["text"] = "Edited for this render"
    assert not child.value.as_loaded()
    request = client.get("/", HTTP_USER_AGENT=DESKTOP_UA).wsgi_request
    assert isinstance(child.block, PersonalizedBlock)
    html = child.block.render(child.value, Context({"request": request, "page": page}).flatten())
    assert "Edited for this render" in html and 'data-ma-variant="default"' in html

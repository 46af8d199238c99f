"""``query_parameters`` parses a WSGI request's query string itself (no QueryDict): it must
answer what ``request.GET.get`` answers, for any query string a client can send."""

from urllib.parse import quote

import pytest
from django.test import RequestFactory, override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from microadjust_cms.visitor.context import VisitorContext, query_parameters

#: Raw query strings as a WSGI server hands them over: bytes seen as latin-1 text.
raw_bytes = st.binary(max_size=120).map(lambda b: b.decode("iso-8859-1"))
pairs = st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12)), max_size=6)
encoded = pairs.map(lambda ps: "&".join(f"{quote(k)}={quote(v)}" for k, v in ps))
alphabet = st.sampled_from(["a", "b", "=", "&", ";", "+", "%", "%2", "%20", "%C3%A9", "%FF", " "])
fragments = st.lists(alphabet, max_size=25).map("".join)


def request_with(query: str):
    request = RequestFactory().get("/")
    request.META["QUERY_STRING"] = query
    return request


def expected(query: str) -> dict:
    request = request_with(query)
    return {key: request.GET.get(key) for key in request.GET}


@settings(max_examples=300, deadline=None)
@given(query=st.one_of(raw_bytes, encoded, fragments))
def test_same_answers_as_request_get(query):
    assert query_parameters(request_with(query)) == expected(query)


def test_last_value_wins_and_blank_values_are_kept():
    found = query_parameters(request_with("a=1&a=2&b=&c"))
    assert found == {"a": "2", "b": "", "c": ""}


def test_a_request_whose_get_was_read_or_replaced_answers_from_it():
    request = request_with("a=1")
    request.GET = request.GET.copy()
    request.GET["a"] = "changed"
    assert query_parameters(request) == {"a": "changed"}


@override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=3)
def test_more_fields_than_django_accepts_give_none():
    from django.core.exceptions import TooManyFieldsSent

    query = "a=1&b=2&c=3&d=4"
    with pytest.raises(TooManyFieldsSent):
        request_with(query).GET  # noqa: B018  (Django refuses the request)
    assert query_parameters(request_with(query)) == {}


def test_visitor_query_signals_read_the_parsed_parameters():
    request = request_with("utm_source=%20NewsLetter%20&ref=Partner")
    visitor = VisitorContext(request, simulated=True)
    assert visitor.signal("utm_source") == "newsletter"
    assert visitor.signal("query_param", "ref") == "Partner"
    assert visitor.signal("utm_campaign") is None
    assert "GET" not in request.__dict__  # answered without building the QueryDict


def test_a_query_string_seen_lately_is_not_parsed_again_but_keyed_by_encoding():
    first = query_parameters(request_with("utm_source=cached&x=1"))
    assert query_parameters(request_with("utm_source=cached&x=1")) is first
    latin = request_with("q=%E9")
    latin.encoding = "iso-8859-1"
    assert query_parameters(latin) == {"q": "é"}
    assert query_parameters(request_with("q=%E9")) == expected("q=%E9")  # UTF-8: not "é"
    long_query = "click=" + "x" * 600  # parsed each time, not cached
    assert query_parameters(request_with(long_query)) == {"click": "x" * 600}
    assert query_parameters(request_with(long_query)) is not query_parameters(request_with(long_query))

import logging

import pytest

from microadjust_cms.conditions import ConditionError, compile_condition, validate_condition
from microadjust_cms.signals.registry import Signal, registry


class FakeVisitor:
    """Answers signals from a dict; raising values simulate a failing signal."""

    def __init__(self, values=None, **more):
        self.values = {**(values or {}), **more}
        self.memo = {}

    def signal(self, name, param=None):
        key = name if param is None else (name, param)
        value = self.values.get(key)
        if isinstance(value, Exception):
            raise value
        return value


def errors_of(condition):
    with pytest.raises(ConditionError) as info:
        validate_condition(condition)
    return info.value.errors


def test_valid_tree_passes():
    validate_condition({"all": [
        {"signal": "visit_count", "op": "gte", "value": 3},
        {"any": [{"signal": "device", "op": "in", "value": ["mobile", "tablet"]},
                 {"not": {"signal": "utm_source", "op": "exists"}}]},
        {"signal": "query_param", "param": "ref", "op": "eq", "value": "x"},
        {"signal": "visit_count", "op": "between", "value": [2, 5]},
    ]})


def test_unknown_signal_names_the_rule():
    errors = errors_of({"all": [{"signal": "device", "op": "eq", "value": "mobile"},
                                {"signal": "shoe_size", "op": "eq", "value": 42}]})
    assert len(errors) == 1
    assert errors[0].startswith("Rule 2 (shoe_size")
    assert "unknown signal 'shoe_size'" in errors[0]


def test_unknown_operator_and_operator_not_for_type():
    assert "unknown operator 'like'" in errors_of({"signal": "device", "op": "like", "value": "x"})[0]
    error = errors_of({"signal": "device", "op": "gte", "value": "mobile"})[0]
    assert "does not apply to a string signal" in error


@pytest.mark.parametrize("rule, fragment", [
    ({"signal": "visit_count", "op": "gte", "value": "3"}, "a whole number"),
    ({"signal": "visit_count", "op": "gte", "value": True}, "a whole number"),
    ({"signal": "is_returning", "op": "eq", "value": "yes"}, "true or false"),
    ({"signal": "device", "op": "eq", "value": "fridge"}, "not one of the choices"),
    ({"signal": "visit_count", "op": "between", "value": [5, 2]}, "low must not be greater"),
    ({"signal": "visit_count", "op": "between", "value": [1]}, "pair"),
    ({"signal": "device", "op": "in", "value": []}, "list of 1"),
    ({"signal": "query_param", "op": "eq", "value": "x"}, "Parameter name is required"),
    ({"signal": "device", "op": "eq", "value": "mobile", "param": "x"}, "takes no parameter"),
    ({"signal": "device", "op": "eq", "value": "mobile", "extra": 1}, "unknown keys"),
])
def test_wrong_values_are_rejected_with_rule_number(rule, fragment):
    errors = errors_of({"any": [rule]})
    assert errors[0].startswith("Rule 1 (")
    assert fragment in errors[0]


@pytest.mark.parametrize("condition, fragment", [
    ({"all": []}, "at least one rule"),
    ({"xor": []}, "Unknown group"),
    ({"all": [], "any": []}, "exactly one"),
    ([1, 2], "Expected a group or a rule"),
])
def test_malformed_groups(condition, fragment):
    assert fragment in errors_of(condition)[0]


def test_depth_and_size_limits():
    node = {"signal": "device", "op": "eq", "value": "mobile"}
    for _ in range(10):
        node = {"not": node}
    assert any("nested deeper" in e for e in errors_of(node))
    many = {"all": [{"signal": "visit_count", "op": "gte", "value": i} for i in range(60)]}
    assert any("at most 50 rules" in e for e in errors_of(many))


@pytest.mark.parametrize("condition, values, expected", [
    ({"signal": "visit_count", "op": "gte", "value": 3}, {"visit_count": 3}, True),
    ({"signal": "visit_count", "op": "gte", "value": 3}, {"visit_count": 2}, False),
    ({"signal": "visit_count", "op": "between", "value": [2, 4]}, {"visit_count": 4}, True),
    ({"signal": "visit_count", "op": "between", "value": [2, 4]}, {"visit_count": 5}, False),
    ({"signal": "device", "op": "in", "value": ["mobile", "tablet"]}, {"device": "tablet"}, True),
    ({"signal": "device", "op": "not_in", "value": ["mobile"]}, {"device": "desktop"}, True),
    ({"signal": "referrer_domain", "op": "contains", "value": "GOOGLE"},
     {"referrer_domain": "news.google.com"}, True),
    ({"signal": "utm_source", "op": "exists"}, {"utm_source": None}, False),
    ({"signal": "utm_source", "op": "exists"}, {"utm_source": "x"}, True),
    ({"signal": "utm_source", "op": "exists", "value": False}, {"utm_source": None}, True),
    ({"signal": "utm_source", "op": "ne", "value": "x"}, {"utm_source": None}, True),
    ({"signal": "utm_source", "op": "eq", "value": "x"}, {"utm_source": None}, False),
    ({"signal": "user_group", "op": "contains", "value": "staff"},
     {"user_group": frozenset({"staff"})}, True),
    ({"signal": "user_group", "op": "in", "value": ["a", "b"]},
     {"user_group": frozenset({"c"})}, False),
    ({"signal": "query_param", "param": "ref", "op": "eq", "value": "ad"},
     {("query_param", "ref"): "ad"}, True),
    ({"not": {"signal": "is_returning", "op": "eq", "value": True}}, {"is_returning": False}, True),
    ({"any": [{"signal": "visit_count", "op": "gt", "value": 9},
              {"signal": "device", "op": "eq", "value": "mobile"}]}, {"visit_count": 1,
                                                                     "device": "mobile"}, True),
    ({"all": [{"signal": "visit_count", "op": "gt", "value": 0},
              {"signal": "device", "op": "eq", "value": "mobile"}]}, {"visit_count": 1,
                                                                     "device": "desktop"}, False),
])
def test_compiled_predicates(condition, values, expected):
    assert compile_condition(condition)(FakeVisitor(values)) is expected


def test_failing_signal_makes_rule_false_and_is_logged(caplog):
    predicate = compile_condition({"any": [
        {"signal": "visit_count", "op": "gte", "value": 1},
        {"signal": "device", "op": "eq", "value": "mobile"}]})
    with caplog.at_level(logging.WARNING, logger="microadjust_cms.conditions"):
        result = predicate(FakeVisitor(visit_count=RuntimeError("store down"), device="mobile"))
    assert result is True  # the other rule still decides
    assert "visit_count" in caplog.text
    with caplog.at_level(logging.WARNING):
        assert predicate(FakeVisitor(visit_count=RuntimeError("x"), device="desktop")) is False


def test_compiled_once_per_condition():
    condition = {"signal": "visit_count", "op": "gte", "value": 2}
    assert compile_condition(condition) is compile_condition(dict(condition))


def test_invalid_condition_at_render_is_never_true(caplog):
    with caplog.at_level(logging.ERROR):
        predicate = compile_condition({"signal": "nope", "op": "eq", "value": 1})
    assert predicate(FakeVisitor(nope=1)) is False
    assert "Invalid condition" in caplog.text


def test_no_eval_of_values():
    """A value that looks like code is compared as a string, never executed."""
    hostile = "__import__('os').system('false')"
    predicate = compile_condition({"signal": "utm_source", "op": "eq", "value": hostile})
    assert predicate(FakeVisitor(utm_source=hostile)) is True
    assert predicate(FakeVisitor(utm_source="x")) is False


def test_custom_signal_validates_against_its_type():
    signal = Signal("plan", "string", lambda v, p: "pro", choices=[("free", "Free"), ("pro", "Pro")])
    registry.register(signal)
    try:
        validate_condition({"signal": "plan", "op": "eq", "value": "pro"})
        assert "not one of the choices" in errors_of({"signal": "plan", "op": "eq",
                                                      "value": "gold"})[0]
    finally:
        registry.unregister("plan")

"""Every Hubble DropReason is described, under its exact proto name."""

from __future__ import annotations

import pytest

from hubbletui.diagnose.drop_reasons import CATEGORIES, POLICY_CODES, all_reasons, describe, is_policy
from hubbletui.proto.flow import flow_pb2

ENUM = {v.number: v.name for v in flow_pb2.DropReason.DESCRIPTOR.values}


def test_every_enum_value_is_described_under_its_proto_name():
    assert {info.code: info.name for info in all_reasons()} == ENUM


@pytest.mark.parametrize("code,name", sorted(ENUM.items()))
def test_entry_is_complete(code, name):
    info = describe(code)
    assert info.name == name and info.code == code
    assert info.category in CATEGORIES and info.category != "unknown"
    assert info.summary.endswith(".") and info.hint.endswith(".")
    assert info.summary.count(". ") == 0, "summary is one sentence"


def test_summaries_are_distinct():
    summaries = [info.summary for info in all_reasons()]
    assert len(set(summaries)) == len(summaries)


def test_lookup_by_name_number_or_numeric_text():
    assert describe("POLICY_DENIED") == describe(133) == describe("133") == describe("policy_denied")
    assert describe(flow_pb2.POLICY_DENY).name == "POLICY_DENY"


def test_policy_reasons():
    assert POLICY_CODES == {133, 181, 189, 165, 177}
    for code in (133, 181, 189, 165, 177, "POLICY_DENIED", "AUTH_REQUIRED"):
        assert is_policy(code)
    for code in (0, 136, 158, 169, 999, "CT_MAP_INSERTION_FAILED", "NOPE"):
        assert not is_policy(code)
    assert describe(133).category == describe(181).category == "policy"
    assert "default deny" in describe(133).summary
    assert "explicit deny" in describe(181).summary


@pytest.mark.parametrize("code,category", [
    (136, "conntrack"), (155, "conntrack"), (167, "nat"), (160, "encapsulation"), (169, "routing"),
    (158, "service"), (140, "datapath"), (201, "multicast"), (0, "other"),
])
def test_categories(code, category):
    assert describe(code).category == category


def test_unknown_code_keeps_its_number():
    info = describe(999)
    assert (info.code, info.category) == (999, "unknown")
    assert "999" in info.summary and info.name == "UNKNOWN_999"
    assert describe(159).category == "unknown"  # the gap in the enum


def test_unknown_name():
    info = describe("NOT_A_REASON")
    assert (info.code, info.name, info.category) == (None, "NOT_A_REASON", "unknown")


def test_to_dict():
    assert describe(133).to_dict()["name"] == "POLICY_DENIED"

"""Budget strings are parsed exactly, and refused with one clear line when they are not quantities."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import nasface
from nasface.arch.budget import Budgets, parse_quantity
from nasface.core.errors import NasfaceError


@pytest.mark.parametrize("text, expected", [
    ("1G", 10**9), ("1g", 10**9), ("500M", 500 * 10**6), ("1.5k", 1500), ("1000000000", 10**9),
    ("2T", 2 * 10**12), (" 1G ", 10**9), ("1e9", 10**9), ("1.5E9", 1_500_000_000), ("2e3M", 2 * 10**9),
    ("1e30", 10**30),
])
def test_flop_quantities(text, expected):
    assert parse_quantity(text, "--budget-flops") == expected


@pytest.mark.parametrize("text, expected", [
    ("20MB", 20_000_000), ("20mb", 20_000_000), ("20MiB", 20 * 2**20), ("20mib", 20 * 2**20),
    ("1GiB", 2**30), ("1.5KB", 1500), ("512B", 512), ("20M", 20_000_000), ("3kib", 3072),
])
def test_byte_quantities(text, expected):
    assert parse_quantity(text, "--budget-mem", in_bytes=True) == expected


@pytest.mark.parametrize("text", ["abc", "-1G", "1X", "", "0", "0G", "1.5", "G", "1 G B", "20MBs",
                                  "1e-3", "1e", "e9", "0e9", "1e31", "1e999999999", "inf"])
def test_bad_quantities_get_one_clear_line(text):
    with pytest.raises(NasfaceError, match="--budget-flops") as caught:
        parse_quantity(text, "--budget-flops")
    assert "\n" not in str(caught.value)


def test_bytes_units_only_for_memory():
    with pytest.raises(NasfaceError, match="not a quantity"):
        parse_quantity("20MB", "--budget-flops")


@given(st.integers(1, 10**15))
def test_plain_integers_round_trip(value):
    assert parse_quantity(str(value), "--budget-params") == value


def test_budgets_against_the_reference_networks():
    budgets = Budgets.parse(flops="1G", mem="20MB")
    varg = nasface.count("vargfacenet")
    assert not budgets.fits(varg)  # 1,022,864,152 FLOPs and 20.8 MB: just over both strict limits
    assert budgets.violations(varg) == ["FLOPs 1,022,864,152 > 1,000,000,000",
                                        "weight bytes (fp32) 20,793,168 > 20,000,000"]
    mobile = nasface.count("mobilefacenet")
    assert budgets.fits(mobile) and all(v <= 0 for v in budgets.constraints(mobile).values())
    assert budgets.describe() == ["FLOPs <= 1,000,000,000 (lfr)", "weight bytes (fp32) <= 20,000,000 = 19.07 MiB"]
    assert Budgets.parse(flops="1G", mem="20MiB").fits({**varg, "flops": 999})


@given(st.integers(1, 10**6), st.integers(0, 20))
def test_scientific_notation_is_exact(mantissa, exponent):
    assert parse_quantity(f"{mantissa}e{exponent}", "--budget-flops") == mantissa * 10**exponent
    assert parse_quantity(f"{mantissa}E+{exponent}", "--budget-mem", in_bytes=True) == mantissa * 10**exponent

"""Money rounded by a library's rule: places and a rounding mode, read as shortest decimals."""

from __future__ import annotations

import random

import pytest

from tier2.core.money import MoneyRule, amount_text, money, round_money


@pytest.mark.parametrize(
    ("x", "rule", "rounded"),
    [
        (2.675, MoneyRule(), 2.68),
        (2.665, MoneyRule(2, "half_even"), 2.66),
        (2.675, MoneyRule(2, "half_even"), 2.68),
        (2.679, MoneyRule(2, "down"), 2.67),
        (2.671, MoneyRule(2, "up"), 2.68),
        (-2.671, MoneyRule(2, "ceiling"), -2.67),
        (-2.671, MoneyRule(2, "floor"), -2.68),
        (1234.5, MoneyRule(0, "half_up"), 1235.0),
        (0.1 + 0.2, MoneyRule(3, "half_up"), 0.3),
        (float("inf"), MoneyRule(), float("inf")),
    ],
)  # fmt: skip
def test_round_money_follows_the_rule(x: float, rule: MoneyRule, rounded: float) -> None:
    """Each rounding mode at its places, on the amount's shortest decimal (2.675 is 2.675)."""
    assert round_money(x, rule) == rounded


def test_the_default_rule_is_cents_half_up() -> None:
    """The default rule rounds exactly as `money` does (the built-ins' amounts are unchanged)."""
    rng = random.Random(17)
    for _ in range(20000):
        x = rng.choice((rng.uniform(0, 1e12), rng.uniform(0, 100), rng.randrange(0, 10**6) / 1000))
        assert round_money(x, MoneyRule()) == money(x)


@pytest.mark.parametrize(
    ("amount", "shown"),
    [(240.0, "240.00"), (1212.45, "1,212.45"), (1.235, "1.235"), (0.0, "0.00"), (1234567.891, "1,234,567.891")],
)  # fmt: skip
def test_an_amount_is_shown_as_it_is_carried_out(amount: float, shown: str) -> None:
    """An amount for a person has at least two decimals and every one it has, so a library
    rounding to other than cents shows what it carries out."""
    assert amount_text(amount) == shown

"""Token and cost accounting: sums are exact, whatever the split."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.core.usage import Price, Usage

usages = st.builds(Usage, st.integers(0, 10**7), st.integers(0, 10**7))
prices = st.builds(
    Price,
    st.decimals(min_value=0, max_value=100, places=4),
    st.decimals(min_value=0, max_value=100, places=4),
)


@given(st.lists(usages, max_size=30))
def test_total_is_the_sum_of_the_parts(parts: list[Usage]) -> None:
    total = Usage.total(parts)
    assert total.input_tokens == sum(u.input_tokens for u in parts)
    assert total.output_tokens == sum(u.output_tokens for u in parts)
    assert total.total_tokens == total.input_tokens + total.output_tokens


@given(st.lists(usages, max_size=30), prices)
def test_cost_of_the_sum_equals_the_sum_of_the_costs(parts: list[Usage], price: Price) -> None:
    assert price.cost(Usage.total(parts)) == sum((price.cost(u) for u in parts), Decimal(0))


@given(usages, prices)
def test_cost_is_never_negative(usage: Usage, price: Price) -> None:
    assert price.cost(usage) >= 0


def test_known_price_example() -> None:
    # 1,234 input tokens at $0.15/M plus 567 output tokens at $0.60/M
    assert Price.of("0.15", "0.60").cost(Usage(1234, 567)) == Decimal("0.0005253")


def test_negative_tokens_are_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        Usage(-1, 0)

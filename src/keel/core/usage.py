"""Token usage and cost accounting.

Costs are exact ``Decimal`` amounts in US dollars so that the cost of a sum of usages equals
the sum of their costs, to the last digit, however many calls a trace aggregates.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

_MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens consumed by one or more model calls."""

    input_tokens: int = 0
    output_tokens: int = 0

    def __post_init__(self) -> None:
        if self.input_tokens < 0 or self.output_tokens < 0:
            raise ValueError("token counts cannot be negative")

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens
        )

    @staticmethod
    def total(usages: list[Usage]) -> Usage:
        return sum(usages, Usage())


@dataclass(frozen=True, slots=True)
class Price:
    """What a model charges, in US dollars per million tokens."""

    input_per_mtok: Decimal = Decimal(0)
    output_per_mtok: Decimal = Decimal(0)

    @classmethod
    def of(cls, input_per_mtok: float | str, output_per_mtok: float | str) -> Price:
        return cls(Decimal(str(input_per_mtok)), Decimal(str(output_per_mtok)))

    def cost(self, usage: Usage) -> Decimal:
        return (
            usage.input_tokens * self.input_per_mtok + usage.output_tokens * self.output_per_mtok
        ) / _MILLION

    @property
    def is_free(self) -> bool:
        return self.input_per_mtok == 0 and self.output_per_mtok == 0

"""A deployment's arms: the stable version plus 1..N candidates, and their traffic weights.

Pure validation, shared by the API, the CLI and the service; every refusal names what to
fix. Weights are percents of primary traffic per version and always sum to 100.

* ``check_candidates``: at least one, no version twice, none equal to stable, at most
  ``MAX_ARMS`` arms in all (stable included);
* ``parse_split``: ``--split`` as the candidates' percents in order (stable gets the rest),
  or stable's percent first and then the candidates' (one number more, summing to 100);
* ``check_weights``: explicit ``{version: percent}`` naming only the deployment's versions,
  each 0..100, together exactly 100.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from keel.core.errors import ConflictError, InvalidInputError

MAX_ARMS = 8  # stable plus at most seven candidates
TOLERANCE = 1e-6


def check_candidates(stable: str | None, candidates: Sequence[str]) -> tuple[str, ...]:
    """The candidates in order, refused when empty, repeated, too many or equal to stable."""
    found = tuple(candidates)
    if not found:
        raise InvalidInputError(
            "a deployment needs at least one candidate version",
            code="deployment_candidates_invalid",
        )
    repeated = sorted({v for v in found if found.count(v) > 1})
    if repeated:
        raise InvalidInputError(
            f"version(s) {', '.join(v[:12] for v in repeated)} listed more than once; "
            "name each candidate once",
            code="deployment_candidates_invalid",
        )
    if len(found) + 1 > MAX_ARMS:
        raise InvalidInputError(
            f"{len(found)} candidates plus stable is {len(found) + 1} arms; at most "
            f"{MAX_ARMS} arms are allowed (split the experiment, or compare offline with "
            "`keel eval`)",
            code="deployment_candidates_invalid",
        )
    if stable is not None and stable in found:
        raise ConflictError(
            f"{stable[:12]} is already what production serves; drop it from the candidates",
            code="deployment_noop",
        )
    return found


def _split_error(message: str) -> InvalidInputError:
    return InvalidInputError(message, code="deployment_split_invalid")


def parse_split(text: str | float | Sequence[float]) -> tuple[float, ...]:
    """``50``, ``"34,33,33"`` or ``[34, 33, 33]`` → percents (checked against arms later)."""
    if isinstance(text, int | float):
        return (float(text),)
    if isinstance(text, str):
        try:
            return tuple(float(p) for p in text.split(",") if p.strip())
        except ValueError as exc:
            raise _split_error(
                f"split {text!r} is not comma-separated percents, e.g. 50 or 34,33,33"
            ) from exc
    return tuple(float(p) for p in text)


def split_weights(
    stable: str, candidates: Sequence[str], split: Sequence[float] | None
) -> dict[str, float]:
    """A/B weights from ``split``: one percent per candidate (stable gets the rest) or one
    more with stable's first. Every arm needs a share above 0. ``None`` splits evenly."""
    arms = len(candidates) + 1
    if split is None:
        even = 100.0 / arms
        return {**dict.fromkeys(candidates, even), stable: 100.0 - even * len(candidates)}
    shares = [float(s) for s in split]
    if len(shares) == len(candidates):
        shares = [100.0 - math.fsum(shares), *shares]
    elif len(shares) != arms:
        raise _split_error(
            f"split has {len(shares)} value(s) for {len(candidates)} candidate(s): give one "
            f"percent per candidate, or {arms} (stable first) summing to 100"
        )
    if not all(math.isfinite(s) and 0 < s < 100 for s in shares):
        raise _split_error(
            f"split {_show(shares)} (stable first) must give every arm a share above 0 and "
            "below 100"
        )
    if abs(math.fsum(shares) - 100.0) > TOLERANCE:
        raise _split_error(f"split {_show(shares)} must sum to 100, got {math.fsum(shares):g}")
    return {stable: shares[0], **dict(zip(candidates, shares[1:], strict=True))}


def check_weights(
    stable: str,
    candidates: Sequence[str],
    weights: Mapping[str, float],
    *,
    retired: Sequence[str] = (),
) -> dict[str, float]:
    """Explicit weights for the deployment's versions: each 0..100, together exactly 100.
    A version left out gets 0; a retired (rolled back) candidate must stay at 0."""
    known = {stable, *candidates}
    unknown = sorted(set(weights) - known)
    if unknown:
        names = ", ".join(f"{c[:12]} (candidate)" for c in candidates)
        raise InvalidInputError(
            f"weights name version(s) {', '.join(unknown)} outside this deployment; "
            f"use {names} and {stable[:12]} (stable)",
            code="deployment_weights_invalid",
        )
    for version, weight in weights.items():
        if not (math.isfinite(weight) and 0 <= weight <= 100):
            raise InvalidInputError(
                f"weight of {version[:12]} must be a percentage from 0 to 100, got {weight}",
                code="deployment_weights_invalid",
            )
    back = sorted(v[:12] for v in retired if weights.get(v, 0.0) > 0)
    if back:
        raise InvalidInputError(
            f"candidate(s) {', '.join(back)} were rolled back in this deployment and keep "
            "weight 0; start a new deployment to try them again",
            code="deployment_weights_invalid",
        )
    full = {v: float(weights.get(v, 0.0)) for v in (*candidates, stable)}
    total = math.fsum(full.values())
    if abs(total - 100.0) > TOLERANCE:
        raise InvalidInputError(
            f"weights must sum to 100, got {total:g}", code="deployment_weights_invalid"
        )
    return full


def _show(shares: Sequence[float]) -> str:
    return ",".join(f"{s:g}" for s in shares)

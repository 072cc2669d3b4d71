"""What a feedback submission may say, validated the same way for HTTP and the CLI.

One submission is one kind of feedback on one trace:

* ``thumbs``: ``value`` ``"up"`` or ``"down"``;
* ``score``: ``value`` a number from 0 to 1 (map stars or 1-10 scales onto it);
* ``correction``: the right answer, ``label`` for label pipelines (ground truth for
  classification) or ``output`` for text and JSON pipelines;
* ``comment``: free text in ``comment``.

Every kind may carry a ``comment``, the application's ``end_user`` id, and ``share``: the
user agrees that the conversation may become an evaluation example (after a PII scrub, an
abuse filter and human approval).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    TypeAdapter,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from keel.core.errors import InvalidInputError

KINDS = ("thumbs", "score", "correction", "comment")
_TEXT_LIMIT = 4000


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trace_id: str = Field(min_length=1, max_length=64, description="Trace id (or request id).")
    end_user: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="The application's id for its end user; recorded with the API key's identity.",
    )
    comment: str | None = Field(None, min_length=1, max_length=_TEXT_LIMIT)
    share: StrictBool = Field(
        False, description="Offer the conversation for an evaluation dataset (after review)."
    )

    def stored_value(self) -> Any:
        return None


class Thumbs(_Base):
    kind: Literal["thumbs"]
    value: Literal["up", "down"]

    def stored_value(self) -> Any:
        return self.value


class Score(_Base):
    kind: Literal["score"]
    value: StrictFloat | StrictInt = Field(ge=0, le=1, description="0 (worst) to 1 (best).")

    def stored_value(self) -> Any:
        return float(self.value)


class Correction(_Base):
    kind: Literal["correction"]
    label: str | None = Field(
        None, min_length=1, max_length=200, description="The right label (label pipelines)."
    )
    output: Any = Field(None, description="The right output (text and JSON pipelines).")

    @model_validator(mode="after")
    def _one_answer(self) -> Correction:
        if (self.label is None) == (self.output is None):
            raise ValueError("a correction gives exactly one of 'label' or 'output'")
        return self

    def stored_value(self) -> Any:
        return {"label": self.label} if self.label is not None else {"output": self.output}


class Comment(_Base):
    kind: Literal["comment"]
    comment: str = Field(min_length=1, max_length=_TEXT_LIMIT)


FEEDBACK_TYPES = (Thumbs, Score, Correction, Comment)
FeedbackIn = Annotated[Thumbs | Score | Correction | Comment, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[Thumbs | Score | Correction | Comment] = TypeAdapter(FeedbackIn)


def parse_feedback(data: Any) -> Thumbs | Score | Correction | Comment:
    """Validate a submission; raises ``feedback_invalid`` (422) saying what to fix."""
    try:
        return _ADAPTER.validate_python(data)
    except PydanticValidationError as exc:
        problems = []
        for err in exc.errors()[:10]:
            where = ".".join(str(p) for p in err["loc"]) or "body"
            problems.append(f"{where}: {err['msg']}")
        msg = "the feedback is malformed: " + "; ".join(problems)
        raise InvalidInputError(msg, code="feedback_invalid", problems=problems) from exc

"""The PII scrub and the abuse/prank filter applied to shared conversations, with the real
guardrail scanners."""

from __future__ import annotations

import pytest

from keel.feedback.screening import Conversation, FeedbackScreen, is_gibberish, user_text_flags
from keel.guardrails.content import ToxicityScanner
from keel.guardrails.sanitizer import PiiSanitizer


@pytest.fixture(scope="module")
def screen() -> FeedbackScreen:
    return FeedbackScreen(PiiSanitizer().scrub, ToxicityScanner(), 0.8)


@pytest.mark.parametrize(
    "text",
    ["asdfghjkl qwrtzp", "xkcd bbbbb zzzzzz", "sdfsdf ghjghj klkl"],
)
def test_keyboard_mashing_is_gibberish(text: str) -> None:
    assert is_gibberish(text)


@pytest.mark.parametrize(
    "text",
    ["The customer was charged twice for the same invoice", "billing", "wrong queue", ""],
)
def test_ordinary_text_is_not_gibberish(text: str) -> None:
    assert not is_gibberish(text)


def test_user_text_flags() -> None:
    assert user_text_flags(["billing!!!!!!!"]) == ["repeated_characters"]
    assert user_text_flags(["wrong wrong wrong wrong"]) == ["repeated_characters"]
    assert user_text_flags(["haha banana"]) == ["joke"]
    assert user_text_flags(["\U0001f602"]) == ["joke"]
    assert user_text_flags(["This should have gone to the accounts team."]) == []


def test_pii_is_scrubbed_everywhere_and_reported(screen: FeedbackScreen) -> None:
    conversation = Conversation(
        input={"subject": "card 4111 1111 1111 1111", "tags": ["ana@example.com"]},
        output={"label": "billing"},
        label="account",
        expected=None,
        comment="reach me at bo@example.org",
    )
    screened = screen.screen(conversation)
    clean = screened.conversation
    assert clean.input == {"subject": "card [CREDIT_CARD]", "tags": ["[EMAIL_ADDRESS]"]}
    assert clean.comment == "reach me at [EMAIL_ADDRESS]" and clean.label == "account"
    assert screened.pii == ("CREDIT_CARD", "EMAIL_ADDRESS") and screened.flags == ()


def test_abuse_is_flagged(screen: FeedbackScreen) -> None:
    abusive = Conversation({"subject": "help"}, "ok", comment="kill yourself, idiot")
    assert "toxic" in screen.screen(abusive).flags
    clean = Conversation({"subject": "help"}, "ok", comment="It should be the accounts team.")
    assert screen.screen(clean).flags == ()
    assert screen.screen(clean, flooding=True).flags == ("flooding",)

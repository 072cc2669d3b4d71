"""Prompt injection and jailbreaks: normalize, decode layered encodings, then match heuristics.

Every view of the text (as written, normalized, de-leeted, and each decoding) is scored by
weighted patterns; the verdict is the best view's score. A single trigger word ("ignore",
"jailbreak", "system prompt") weighs little; an instruction aimed at the model weighs a lot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.core.errors import SpecError
from keel.guardrails.normalize import deleet, views
from keel.guardrails.verdict import ScanContext, Verdict

if TYPE_CHECKING:
    from keel.guardrails.classifier import InjectionClassifier

_PRIOR = r"(?:all |any |the |your |my |these |those |every )*(?:previous|prior|above|earlier|preceding|initial|original|system|existing|old|developer'?s?)"
_RULES = r"(?:instructions?|prompts?|rules?|directions?|guidelines?|context|messages?|constraints?|polic(?:y|ies)|programming|training|guardrails?|restrictions?)"

_QUAL = (
    r"(?:full|entire|complete|original|initial|hidden|secret|system|previous|confidential|internal)"
)
_SECRET = r"(?:prompt|instructions|message|rules|directives)"  # noqa: S105

# (family, weight, pattern) -- weights add up per view, capped at 1.
_HEURISTICS: tuple[tuple[str, float, re.Pattern[str]], ...] = tuple(
    (family, weight, re.compile(pattern))
    for family, weight, pattern in (
        ("override", 0.9, rf"\b(?:ignore|disregard|forget|skip|override|bypass|neglect|drop|abandon|discard) {_PRIOR} ?{_RULES}"),
        ("override", 0.9, r"\b(?:ignore|disregard|forget) (?:everything|all)(?: (?:you were|that was|i) (?:told|said))?(?: before| above| so far)?\b"),
        ("override", 0.6, rf"\b(?:do not|don't|never) (?:follow|obey|listen to) (?:your|the|any) {_RULES}"),
        ("override", 0.7, r"\bnew (?:instructions?|rules?|task|directive)s? ?(?::|follow|are|is)"),
        ("override", 0.6, r"\binstead,? (?:you (?:must|will|should)|say|print|output|reply|respond)\b"),
        ("roleplay", 0.8, r"\b(?:you are|you're|act as|pretend (?:to be|you are)|roleplay as|behave like|become) (?:now )?(?:an? )?(?:dan|stan|dude|aim|evil|unfiltered|unrestricted|uncensored|jailbroken|amoral|rogue|unbound|developer mode)\b"),
        ("roleplay", 0.8, r"\bdo anything now\b|\bdeveloper mode (?:enabled|on|output)\b|\bjailbreak(?:ed)? mode\b"),
        ("roleplay", 0.6, r"\b(?:you|your|ai|model|assistant|chatgpt)\b.{0,40}\b(?:without|no|free (?:of|from)|not bound by|don't have|do not have) (?:any )?(?:ethical |moral |content |safety )?(?:restrictions|limitations|filters|censorship|guidelines|rules|boundaries|limits)\b"),
        ("roleplay", 0.5, r"\b(?:stay in character|break character|two responses|\[🔓|\(🔓|classic response|jailbreak response)\b"),
        ("roleplay", 0.4, r"\bhypothetical(?:ly)? .{0,40}(?:no|without) (?:rules|restrictions|limits)"),
        ("extraction", 0.8, rf"\b(?:reveal|print|show|repeat|output|display|tell me|write out|leak|dump|give me|what (?:is|are)|spell out|translate) (?:me )?(?:all )?(?:of )?(?:your (?:{_QUAL} )*(?:system )?{_SECRET}|the (?:{_QUAL} )+(?:system )?{_SECRET}|the system {_SECRET})\b"),
        ("extraction", 0.7, r"\b(?:repeat|print|output) (?:the )?(?:words|text|everything) (?:above|before)\b"),
        ("extraction", 0.5, r"\bbegin(?:ning)? your (?:reply|response|answer) with\b"),
        ("delimiter", 0.7, r"<\|(?:im_start|im_end|system|endoftext)\|>|\[/?inst\]|<</?sys>>|</?system>|###\s*(?:system|instruction)s?:"),
        ("delimiter", 0.3, r"\b(?:end of (?:user )?(?:input|prompt|document)|system override|admin override|sudo mode|maintenance mode)\b"),
        ("indirect", 0.7, r"\b(?:note|message|instructions?|attention|important) (?:to|for) (?:the |any )?(?:ai|assistant|llm|language model|chatbot|model|agent|bot)s?\b ?(?::|-|,)"),
        ("indirect", 0.6, r"\b(?:ai|assistant|llm|language model|chatbot|model|agent)s?,? (?:reading|processing|summari[sz]ing|that reads) (?:this|these)\b"),
        ("indirect", 0.6, r"\b(?:when|if) (?:you (?:are )?)?(?:summari[sz]|read|process|analy[sz])(?:e|es|ing)? (?:this|the) (?:page|document|email|text|article|content)\b.{0,80}\b(?:you must|say|include|tell|send|output|insert)\b"),
        ("indirect", 0.5, r"\b(?:send|forward|post|exfiltrate|upload) (?:all |the |this )?(?:conversation|chat history|user data|emails?|credentials|passwords?|data) to\b"),
        ("indirect", 0.5, r"!\[[^\]]*\]\(https?://[^)]*(?:\?|&)[a-z_]*=\s*(?:\{|\$|%7b)"),
        ("harm", 0.3, r"\b(?:step[- ]by[- ]step|detailed) (?:instructions|guide) (?:to|for|on how to) (?:make|build|synthesi[sz]e|create) (?:a )?(?:bomb|explosive|weapon|meth|nerve agent|malware|ransomware)"),
    )
)  # fmt: skip


_CLASSIFIED_VIEWS = 6
_LEET = re.compile(r"[a-z][0-9@$][a-z]|[0-9][a-z]{2}[0-9]")


@dataclass(frozen=True, slots=True)
class InjectionScanner:
    """Heuristics on every view; the shipped classifier on the first few (batched)."""

    classifier: InjectionClassifier | None = None
    name: str = "prompt_injection"

    def score_view(self, view: str) -> tuple[float, list[str]]:
        total, families = 0.0, []
        for family, weight, pattern in _HEURISTICS:
            if pattern.search(view):
                total += weight
                families.append(family)
        return min(total, 1.0), families

    def scan(self, text: str, context: ScanContext) -> Verdict:
        best, reason, decoded = 0.0, "", False
        seen = views(text)
        for index, view in enumerate(seen):
            for candidate in (view, deleet(view)) if _LEET.search(view) else (view,):
                score, families = self.score_view(candidate)
                if score > best:
                    best, reason, decoded = score, ",".join(sorted(set(families))), index > 0
        if self.classifier is not None and best < 1.0:
            candidates = seen[:_CLASSIFIED_VIEWS]
            if _LEET.search(seen[0]):
                candidates = [*candidates, deleet(seen[0])]
            probabilities = self.classifier.probabilities(candidates)
            top = max(range(len(probabilities)), key=probabilities.__getitem__)
            if probabilities[top] > best:
                best, reason, decoded = probabilities[top], "classifier", top > 0
        if best == 0.0:
            return Verdict.clean("prompt_injection")
        return Verdict(best, "prompt_injection", (), reason + (" (decoded)" if decoded else ""))


def build_injection(options: dict[str, Any]) -> InjectionScanner:
    use = options.get("classifier", True)
    if not isinstance(use, bool):
        raise SpecError(
            "prompt_injection: classifier must be true or false", code="guardrail_invalid"
        )
    from keel.guardrails.classifier import InjectionClassifier  # numpy/sklearn: load lazily

    return InjectionScanner(InjectionClassifier.load() if use else None)

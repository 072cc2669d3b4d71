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
from keel.guardrails.normalize import deleet, segments, views
from keel.guardrails.verdict import ScanContext, Verdict

if TYPE_CHECKING:
    from keel.guardrails.classifier import InjectionClassifier
    from keel.guardrails.shared_models import SharedModels

_PRIOR = r"(?:all |any |the |your |my |these |those |every )*(?:previous|prior|above|earlier|preceding|initial|original|system|existing|old|developer'?s?)"
_RULES = r"(?:instructions?|prompts?|rules?|directions?|guidelines?|context|messages?|constraints?|polic(?:y|ies)|programming|training|guardrails?|restrictions?)"

_QUAL = (
    r"(?:full|entire|complete|original|initial|hidden|secret|system|previous|confidential|internal)"
)
_SECRET = r"(?:prompt|instructions|message|rules|directives)"  # noqa: S105

# (family, weight, anchors, pattern) -- weights add up per view, capped at 1. A pattern is
# only tried when one of its anchors (plain substrings of the lowercased view) is present:
# substring tests cost microseconds, a regex pass over a long prompt a tenth of a millisecond.
_HEURISTICS: tuple[tuple[str, float, tuple[str, ...], re.Pattern[str]], ...] = tuple(
    (family, weight, tuple(anchors.split("|")), re.compile(pattern))
    for family, weight, anchors, pattern in (
        ("override", 0.9, "ignor|disregard|forget|skip|overrid|bypass|neglect|drop|abandon|discard|set aside|put aside|cancel|disobey|replace",
         rf"\b(?:ignore|ignoring|disregard|disregarding|forget|skip|override|bypass|neglect|drop|abandon|discard|cancel|disobey|set aside|put aside|replace) (?:all |any |the |my |these |those |every |of )*(?:your (?:\w+ )?|(?:(?:previous|prior|above|earlier|preceding|initial|original|system|existing|old|current|usual|normal|developer'?s?|assistant|safety|content|hidden) )+)(?:and following )?{_RULES}"),
        ("override", 0.9, "'s ", rf"\b(?:ignore|disregard|forget|bypass|override|set aside) (?:all |any |of )*(?:the|your) (?:\w+'s )(?:own )?{_RULES}"),
        ("override", 0.9, "ignor|disregard|forget", r"\b(?:ignore|disregard|forget) (?:everything|all)(?: (?:you were|that was|i) (?:told|said))?(?: before| above| so far)?\b"),
        ("override", 0.6, "follow|obey|listen", rf"\b(?:do not|don't|never|stop) (?:follow|obey|listen to|following|obeying) (?:your (?:\w+ )?|(?:the|these|those) (?:previous|above|original|system|initial|assistant) ){_RULES}"),
        ("override", 0.7, "new ", r"\bnew (?:instructions?|rules?|task|directive|system (?:message|prompt))s?(?: set)?(?: loaded)? ?(?::|follow|are|is)"),
        ("override", 0.6, "instead", r"\binstead,? (?:you (?:must|will|should)|say|print|output|reply|respond|spell|write|tell)\b"),
        ("override", 0.6, "obsolete|revoked|no longer|changed", rf"\b(?:(?:previous|above|earlier|old|your) {_RULES} (?:is|are|have been|has been) (?:obsolete|revoked|void|cancelled|canceled|changed|replaced|lifted|removed)|you (?:are no longer|have no (?:rules|restrictions|limits)))\b"),
        ("override", 0.6, "filter|safety|restriction|guideline|constraint|censor", r"\b(?:turn off|disable|drop|remove|lift|switch off|deactivate|bypass|override) (?:all |any |your |the )*(?:safety |content |ethical )?(?:filters?|safety (?:settings|features|guidelines|measures)|restrictions|guidelines|constraints|censorship|safeguards)\b"),
        ("roleplay", 0.8, "dan|stan|dude|aim|evil|unfilter|unrestrict|uncensor|jailbr|amoral|rogue|unbound|developer mode",
         r"\b(?:you are|you're|act as|pretend (?:to be|you are)|roleplay as|behave like|become) (?:now )?(?:an? )?(?:dan|stan|dude|aim|evil|unfiltered|unrestricted|uncensored|jailbroken|amoral|rogue|unbound|developer mode|free assistant)\b"),
        ("roleplay", 0.8, "do anything now|developer mode|jailbr|test mode|god mode|dev mode|unrestricted mode|dan mode", r"\bdo anything now\b|\b(?:enter|activate|switch to|turn on) (?:unrestricted|god|jailbreak|dan) mode\b|\b(?:developer|dev|god|unrestricted test|jailbreak(?:ed)?|debug) mode (?:enabled|on(?! (?:a|an|the|my|your|his|her|their|our|this|that)\b)|output|activated)\b|\bjailbreak(?:ed)? mode\b|\b(?:now|are) in (?:unrestricted|developer|god|jailbreak) (?:test )?mode\b"),
        ("roleplay", 0.6, "without|free of|free from|not bound|have no|no limit|no rule|no restriction|no filter|no guideline",
         r"\b(?:you|your|ai|model|assistant|chatgpt)\b.{0,40}\b(?:without|no|free (?:of|from)|not bound by|don't have|do not have) (?:any )?(?:ethical |moral |content |safety )?(?:restrictions|limitations|filters|censorship|guidelines|rules|boundaries|limits)\b"),
        ("roleplay", 0.5, "character|two responses|\U0001f513|classic response|jailbreak response", r"\b(?:stay in character|break character|two responses|\[🔓|\(🔓|classic response|jailbreak response)\b"),
        ("roleplay", 0.4, "hypothetical", r"\bhypothetical(?:ly)? .{0,40}(?:no|without) (?:rules|restrictions|limits)"),
        ("extraction", 0.8, "prompt|instruction|message|rules|directive|preamble|configuration|setup|initiali",
         rf"\b(?:reveal|print|show|repeat|output|display|tell me|write out|leak|dump|give me|what (?:is|are|does|do)|spell out|translate|paste|copy|quote|send|summari[sz]e|recite|share) (?:me )?(?:back )?(?:all |of |out )*(?:your (?:(?:{_QUAL}|very|own|actual|exact|first|developer|operator) )*(?:system )?(?:{_SECRET}|preamble|configuration|setup|initiali[sz]ation)|the (?:(?:{_QUAL}|exact|actual|developer|operator|factory) )+(?:system )?(?:{_SECRET}|preamble)(?! of (?!yours\b|you\b|(?:this|the|our) (?:conversation|chat|session|assistant|model|bot|ai)\b))|the system {_SECRET}|(?:the )?(?:text|words|content|contents) of your (?:\w+ )?(?:{_SECRET}|preamble|configuration|setup))\b"),
        ("extraction", 0.7, "above|before|context|preamble", r"\b(?:repeat|print|output|copy|quote) (?:the |all (?:of )?(?:the )?)?(?:words|text|everything|content|contents)(?: in your context)? (?:above|before)\b"),
        ("extraction", 0.5, "begin", r"\bbegin(?:ning)? your (?:reply|response|answer) with\b"),
        ("extraction", 0.6, "secret|password|api key|confidential", r"\b(?:say|tell me|reveal|print|give me|write out|what(?:'s| is)) (?:me )?(?:the|your) (?:secret (?:word|key|code|password)|password|api key|confidential (?:instructions|information|data))\b"),
        ("delimiter", 0.7, "<|[|###", r"<\|(?:im_start|im_end|system|endoftext)\|>|\[/?inst\]|<</?sys>>|</?system>|</?admin>|###\s*(?:new )?(?:system|instruction)s?(?: message)?:"),
        ("delimiter", 0.3, "end of|override|sudo mode|maintenance mode|system:", r"\b(?:end of (?:user )?(?:input|prompt|document|conversation|session)|system override|admin override|sudo mode|maintenance mode)\b|(?:^|\n|\. )system: "),
        ("authority", 0.4, "developer|admin|supervisor|security team|authori|clearance|permission",
         r"\b(?:i am|i'm|as) (?:your|the) (?:developer|creator|admin|administrator|operator|supervisor|owner)\b|\b(?:admin|developer|operator) (?:here|mode(?! on (?:a|an|the|my|your|his|her|their|our|this|that)\b))\b|\bi have (?:clearance|authori[sz]ation|permission)\b|\b(?:granted|given) you permission to\b|\bauthori[sz]ing you to\b"),
        ("indirect", 0.7, "note|message|instruction|attention|important",
         r"\b(?:note|message|instructions?|attention|important) (?:to|for) (?:the |any )?(?:ai|assistant|llm|language model|chatbot|model|agent|bot|automated)s?\b ?(?::|-|,|analysis|screening|systems?)"),
        ("indirect", 0.6, "reading|processing|summari|that reads", r"\b(?:ai|assistant|llm|language model|chatbot|model|agent)s?,? (?:reading|processing|summari[sz]ing|that reads) (?:this|these)\b"),
        ("indirect", 0.6, "summari|read|process|analy", r"\b(?:when|if) (?:the )?(?:you (?:are )?|user (?:asks|requests) (?:for )?(?:a )?)?(?:summari[sz]|read|process|analy[sz])(?:e|es|ing|y)? (?:this|the) (?:page|document|email|text|article|content|resume|report|data)\b.{0,80}\b(?:you must|say|include|tell|send|output|insert|reply|respond)\b|\bif (?:the )?user asks for a summary\b"),
        ("indirect", 0.5, "send|forward|post|exfiltrate|upload", r"\b(?:send|forward|post|exfiltrate|upload) (?:all |the |this )?(?:conversation|chat history|user data|emails?|credentials|passwords?|data) to\b"),
        ("indirect", 0.5, "](", r"!\[[^\]]*\]\(https?://[^)]*(?:\?|&)[a-z_]*=\s*(?:\{|\$|%7b)"),
        ("indirect", 0.6, "ignore|focus|disregard|report only|print", r"\b(?:ignore|disregard) (?:the rest of|other|all other|the other|any other) (?:this )?(?:data|content|text|info(?:rmation)?|documents?|snippets?)\b|\bfocus (?:exclusively|only) on the (?:following|information)\b|\*\*\*report only\b"),
        ("indirect", 0.6, "questioned|asked", r"\bif (?:questioned|asked)\b[^.]{0,40}, (?:report|say|respond|reply|answer|state|tell)\b"),
        ("indirect", 0.5, "assistant:|ai:", r"(?:^|\n|\] |> )\s*(?:assistant|ai): .{0,200}\n\s*(?:user|human): "),
        ("delimiter", 0.5, "instruction>|admin request|[system]|core instruction|follow instruction", r"</?instruction>|\[admin request::|\[system\]|-- core instruction|\bfollow instruction\b"),
        ("harm", 0.3, "step|detailed", r"\b(?:step[- ]by[- ]step|detailed) (?:instructions|guide) (?:to|for|on how to) (?:make|build|synthesi[sz]e|create) (?:a )?(?:bomb|explosive|weapon|meth|nerve agent|malware|ransomware)"),
    )
)  # fmt: skip


_CLASSIFIED_VIEWS = 6
_LEET = re.compile(r"[a-z][0-9@$][a-z]|[0-9][a-z]{2}[0-9]")


def classified(seen: list[str]) -> tuple[list[str], list[tuple[int, int]]]:
    """What the classifier scores, batched: the first views (as written, normalized, decoded)
    and the de-leeted text, then the segments of the normalized text (as spans of it)."""
    candidates = seen[:_CLASSIFIED_VIEWS]
    if _LEET.search(seen[0]):
        candidates = [*candidates, deleet(seen[0])]
    return candidates, segments(seen[0])


@dataclass(frozen=True, slots=True)
class InjectionScanner:
    """Heuristics on every view; the shipped classifier on the first few (batched). Heuristics
    that fired are overruled when the classifier finds the text plainly ordinary (its
    ``heuristic_veto``, chosen on the validation folds with the cut)."""

    classifier: InjectionClassifier | None = None
    name: str = "prompt_injection"

    def score_view(self, view: str) -> tuple[float, list[str]]:
        total, families = 0.0, []
        for family, weight, anchors, pattern in _HEURISTICS:
            if any(a in view for a in anchors) and pattern.search(view):
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
        if self.classifier is not None:
            probabilities = self.classifier.probabilities(*classified(seen))
            top = max(range(len(probabilities)), key=probabilities.__getitem__)
            if best >= 0.5 and self.classifier.overrules(probabilities[top]):
                best, reason = probabilities[top], f"classifier overruled {reason}"
                decoded = 0 < top < min(len(seen), _CLASSIFIED_VIEWS)
            elif probabilities[top] > best:
                best, reason, decoded = (
                    probabilities[top],
                    "classifier",
                    0 < top < min(len(seen), _CLASSIFIED_VIEWS),
                )
        if best == 0.0:
            return Verdict.clean("prompt_injection")
        return Verdict(best, "prompt_injection", (), reason + (" (decoded)" if decoded else ""))


def build_injection(options: dict[str, Any], models: SharedModels) -> InjectionScanner:
    use = options.get("classifier", True)
    if not isinstance(use, bool):
        raise SpecError(
            "prompt_injection: classifier must be true or false", code="guardrail_invalid"
        )
    return InjectionScanner(models.injection_classifier() if use else None)

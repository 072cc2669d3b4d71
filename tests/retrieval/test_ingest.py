"""Ingestion as a user sees it: incremental by content hash, versions and rollback, skipped
files reported, duplicates removed, PII masked. Runs on SQLite and on Postgres + pgvector."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keel.core.errors import ConflictError, InvalidInputError, NotFoundError
from keel.retrieval.sanitize import RegexSanitizer
from keel.retrieval.search import SearchRequest
from keel.retrieval.service import RetrievalService

from .conftest import write_corpus

pytestmark = pytest.mark.anyio


async def sources(service: RetrievalService, query: str, **kw: object) -> list[str]:
    result = await service.search(SearchRequest("kb", query, top_k=10, **kw))  # type: ignore[arg-type]
    return [Path(h.source.split("#")[0]).name for h in result.hits]


async def test_reingest_is_incremental(service: RetrievalService, tmp_path: Path) -> None:
    docs = write_corpus(tmp_path)
    first = await service.ingest("kb", docs)
    assert first.version == 1
    assert first.documents_added == 4
    assert first.chunks_embedded >= 4

    again = await service.ingest("kb", docs)
    assert again.version == 2
    assert again.chunks_embedded == 0
    assert again.documents_unchanged == 4

    (docs / "guide" / "billing.md").write_text(
        "# Billing\n\nInvoices now arrive on the fifteenth of each month.\n"
    )
    changed = await service.ingest("kb", docs)
    assert changed.documents_changed == 1
    assert changed.documents_unchanged == 3
    assert changed.chunks_embedded == 1  # only the changed file's single chunk
    assert "billing.md" in await sources(service, "when do invoices arrive fifteenth")
    hits = await service.search(SearchRequest("kb", "invoices first day of each month"))
    assert all("first day" not in h.text for h in hits.hits)

    (docs / "faq.txt").unlink()
    removed = await service.ingest("kb", docs)
    assert removed.documents_removed == 1
    assert removed.chunks_embedded == 0
    assert "faq.txt" not in await sources(service, "support hours Central European Time")
    counts = service.index.counts(service.index.collection("kb"))
    assert counts["documents"] == 3


async def test_rollback_serves_an_earlier_version(
    service: RetrievalService, tmp_path: Path
) -> None:
    docs = write_corpus(tmp_path)
    await service.ingest("kb", docs)
    (docs / "faq.txt").write_text("Support is now available around the clock, every day.")
    await service.ingest("kb", docs)
    assert (
        "around the clock"
        in (await service.search(SearchRequest("kb", "support hours"))).hits[0].text
    )

    service.index.rollback("kb", 1)
    result = await service.search(SearchRequest("kb", "support hours"))
    assert result.version == 1
    assert all("around the clock" not in h.text for h in result.hits)
    assert any("9:00 to 17:00" in h.text for h in result.hits)

    # the next ingest builds on version 1; version 2 is abandoned
    third = await service.ingest("kb", docs)
    assert third.version == 3
    assert third.documents_changed == 1 and third.chunks_embedded == 1
    states = {v["version"]: v["state"] for v in service.index.versions("kb")}
    assert states == {1: "active", 2: "abandoned", 3: "active"}
    with pytest.raises(NotFoundError):
        service.index.rollback("kb", 2)


async def test_corrupt_and_unsupported_files_are_skipped(
    service: RetrievalService, tmp_path: Path
) -> None:
    docs = write_corpus(tmp_path)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7 this is not really a pdf")
    (docs / "image.png").write_bytes(b"\x89PNG\r\n")
    (docs / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (docs / "records.jsonl").write_text(
        json.dumps({"id": "r1", "text": "Record one talks about warehouse robots."})
        + "\n{not json\n"
        + json.dumps({"id": "r3", "body": "no text field"})
        + "\n"
    )
    report = await service.ingest("kb", docs)
    reasons = {Path(s.source).name.split(":")[0]: s.reason for s in report.skipped}
    assert set(reasons) == {"broken.pdf", "image.png", "latin1.txt", "records.jsonl"}
    assert "unsupported" in reasons["image.png"]
    assert report.documents_added == 5  # four corpus files and the good record
    assert "records.jsonl" in await sources(service, "warehouse robots")


async def test_a_file_that_breaks_keeps_its_previous_version(
    service: RetrievalService, tmp_path: Path
) -> None:
    docs = write_corpus(tmp_path)
    (docs / "manual.pdf").write_bytes(_pdf("Torque the bolts to twelve newton metres."))
    first = await service.ingest("kb", docs)
    assert first.documents_added == 5
    assert "manual.pdf" in await sources(service, "bolt torque newton metres")
    (docs / "manual.pdf").write_bytes(b"%PDF-1.7 truncated")
    second = await service.ingest("kb", docs)
    assert [Path(s.source).name for s in second.skipped] == ["manual.pdf"]
    assert second.documents_removed == 0
    assert "manual.pdf" in await sources(service, "bolt torque newton metres")


async def test_duplicates_are_not_indexed(service: RetrievalService, tmp_path: Path) -> None:
    docs = write_corpus(tmp_path)
    text = (docs / "guide" / "billing.md").read_text()
    (docs / "copy.md").write_text(text.replace("# Billing", "#   Billing  "))
    long = " ".join(f"word{i}" for i in range(200))
    (docs / "long.txt").write_text(long)
    (docs / "long-near.txt").write_text(long.replace("word150", "changed"))
    report = await service.ingest("kb", docs)
    kinds = {Path(d.source).name: d.reason.split()[0] for d in report.duplicates}
    # the first of each pair in path order stays; its copy is reported
    assert kinds == {"billing.md": "exact", "long.txt": "near"}
    assert report.documents_added == 5  # seven files, two of them copies


async def test_pii_is_masked_before_indexing(service: RetrievalService, tmp_path: Path) -> None:
    folder = tmp_path / "tickets"
    folder.mkdir()
    (folder / "t1.txt").write_text(
        "Customer jane.doe@example.com called from +1 415 555 0199 about card 4111 1111 1111 1111."
    )
    await service.ingest("kb", folder, sanitizer=RegexSanitizer())
    hits = (await service.search(SearchRequest("kb", "customer called about card"))).hits
    assert hits
    text = hits[0].text
    assert "jane.doe@example.com" not in text and "4111" not in text and "555" not in text
    assert "[EMAIL]" in text and "[CARD]" in text and "[PHONE]" in text


async def test_jsonl_records_carry_metadata_and_groups(
    service: RetrievalService, tmp_path: Path
) -> None:
    path = tmp_path / "kb.jsonl"
    records = [
        {"id": "a", "text": "Parental leave is sixteen weeks.", "groups": ["hr"], "lang": "en"},
        {"id": "b", "text": "Le congé parental est de seize semaines.", "lang": "fr"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records))
    await service.ingest("kb", path)
    public = await service.search(SearchRequest("kb", "parental leave weeks", top_k=5))
    assert [h.metadata["lang"] for h in public.hits] == ["fr"]
    hr = await service.search(
        SearchRequest("kb", "parental leave weeks", groups=("hr",), filters={"lang": "en"})
    )
    assert [h.source.rsplit("#", 1)[1] for h in hr.hits] == ["a"]


async def test_bad_requests_have_clear_errors(service: RetrievalService, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as missing:
        await service.ingest("kb", tmp_path / "nope")
    assert missing.value.code == "ingest_path_missing"
    with pytest.raises(InvalidInputError):
        await service.ingest("Bad Name", tmp_path)
    with pytest.raises(NotFoundError):
        await service.search(SearchRequest("unknown", "anything"))
    docs = write_corpus(tmp_path)
    await service.ingest("kb", docs)
    with pytest.raises(ConflictError) as mismatch:
        await service.ingest("kb", docs, embedder="testing:echo")
    assert mismatch.value.code == "embedder_mismatch"


def _pdf(text: str) -> bytes:
    """A minimal one-page PDF whose page shows ``text`` (written with pypdf)."""
    import io

    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    page = writer.add_blank_page(width=300, height=100)
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
    )
    stream = DecodedStreamObject()
    stream.set_data(f"BT /F1 10 Tf 10 50 Td ({text}) Tj ET".encode())
    page[NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


async def test_the_runtime_masks_pii_with_the_guardrails_scanner(tmp_path: Path) -> None:
    """With `retrieval.sanitize_pii` on, ingestion uses the guardrails' PII scanner
    (Presidio entity names, checksum-validated cards and IBANs), not the regex fallback."""
    from keel.runtime import Runtime
    from keel.settings import KeelSettings

    settings = KeelSettings(home=tmp_path / "home", retrieval={"sanitize_pii": True})
    runtime = Runtime(settings)
    try:
        folder = tmp_path / "tickets"
        folder.mkdir()
        (folder / "t1.txt").write_text(
            "Customer jane.doe@example.com paid with card 4111 1111 1111 1111 "
            "from IBAN GB82 WEST 1234 5698 7654 32; order 1234 5678 9012 3456 is not a card."
        )
        service = runtime.retrieval
        await service.ingest("kb", folder)
        hits = (await service.search(SearchRequest("kb", "customer paid with card"))).hits
        text = hits[0].text
        assert "jane.doe@example.com" not in text and "4111" not in text and "GB82" not in text
        assert "[EMAIL_ADDRESS]" in text and "[CREDIT_CARD]" in text and "[IBAN_CODE]" in text
        assert "1234 5678 9012 3456" in text  # fails the Luhn check: not masked as a card
    finally:
        runtime.close()

"""PDF and Word API docs uploaded and asked about end to end: the real parse workers, model and store."""

from __future__ import annotations

import pytest

from core import messages
from core.actions import AskQuestion, BytesAttachment, ListSpecs, Origin, UploadSpec
from core.errors import InvalidSpecError
from core.models import SpecFormat
from tests.core.parsing.documents import encrypt_pdf, rezip, things_docx, things_pdf

TEAM = Origin("slack", "T-DOCS", user="alice")


@pytest.mark.parametrize(("filename", "make"), [("things.pdf", things_pdf), ("things.docx", things_docx)])
async def test_a_question_is_answered_from_an_uploaded_document(assistant, filename, make) -> None:
    report = await assistant.ingest(UploadSpec(TEAM, BytesAttachment(filename, make()), "things"))
    assert report.record.format is SpecFormat.MARKDOWN
    assert report.record.operation_count == 6
    [record] = await assistant.list_specs(ListSpecs(TEAM))
    assert (record.name, record.title, record.filename) == ("things", "Things API", filename)

    answer = await assistant.ask(AskQuestion(TEAM, "how do I archive a thing?"))
    text = answer.as_markdown()
    assert "POST /v1/things/{id}/archive" in text
    assert answer.citations[0].spec == "things" and "Archive a thing" in answer.citations[0].label
    getting = await assistant.ask(AskQuestion(TEAM, "how can I fetch one thing by its id?"))
    assert "GET /v1/things/{id}" in getting.as_markdown()


async def test_refused_documents_change_nothing_already_stored(assistant) -> None:
    await assistant.ingest(UploadSpec(TEAM, BytesAttachment("things.pdf", things_pdf()), "things"))
    bad = {
        "things.pdf": (encrypt_pdf(things_pdf(), "pw"), messages.encrypted_pdf("things.pdf")),
        "things.docx": (
            rezip(things_docx(), add={"word/media/big.bin": b"\0" * (8 * 1024 * 1024)}),
            messages.document_bomb("things.docx", "Word document"),
        ),
    }
    for filename, (data, message) in bad.items():
        with pytest.raises(InvalidSpecError) as caught:
            await assistant.ingest(UploadSpec(TEAM, BytesAttachment(filename, data), "things"))
        assert caught.value.user_message == message
    [record] = await assistant.list_specs(ListSpecs(TEAM))
    assert record.filename == "things.pdf" and record.operation_count == 6
    answer = await assistant.ask(AskQuestion(TEAM, "how do I archive a thing?"))
    assert "POST /v1/things/{id}/archive" in answer.as_markdown()

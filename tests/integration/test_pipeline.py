"""The whole path over real HTTP: upload -> S3 notification -> SQS -> worker -> outputs."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from pathlib import Path

import pymupdf
import pytest

from handler.aws import Clients
from handler.settings import Settings
from handler.worker.build import status_store
from tests.conftest import DATA, SAMPLES, drain, read_outputs, upload

pytestmark = pytest.mark.integration

HOSTILE = DATA / "hostile"


def _get(clients: Clients, settings: Settings, key: str) -> bytes:
    return clients.s3.get_object(Bucket=settings.bucket, Key=key)["Body"].read()


def _item(clients: Clients, settings: Settings, key: str) -> dict:
    item = status_store(settings, clients).get(f"{settings.bucket}/{key}")
    assert item is not None, f"no status item for {key}"
    return item.raw


def test_born_digital_scan_and_mixed_documents_all_succeed(
    stack_settings: Settings, clients: Clients
) -> None:
    # Given a born-digital PDF, a scanned TIFF and a PDF with one of each kind of page
    keys = {
        "digital": upload(
            clients, stack_settings, SAMPLES / "pysf__multicolumn.pdf", "a/multi.pdf"
        ),
        "scan": upload(clients, stack_settings, SAMPLES / "tess__phototest.tif", "b/photo.tif"),
        "mixed": upload(clients, stack_settings, SAMPLES / "mixed.pdf", "c/mixed.pdf"),
    }
    # When a worker drains the queue
    drain(stack_settings, clients)
    # Then each ends SUCCEEDED with the four kinds of outputs, and the manifest is true
    for name, key in keys.items():
        item = _item(clients, stack_settings, key)
        assert item["status"] == "SUCCEEDED", (name, item.get("error"))
        assert item["pages_done"] == item["pages_total"] > 0
        outputs = read_outputs(clients, stack_settings, key)
        assert {"document.md", "elements.json", "manifest.json", "pages/0001.md"} <= set(outputs)
        manifest = json.loads(outputs["manifest.json"])
        assert manifest["status"] == "SUCCEEDED"
        assert manifest["source"]["key"] == key
        listed = {o["key"].rsplit("/", 1)[-1] for o in manifest["outputs"]}
        assert "document.md" in listed and "elements.json" in listed
        for entry in manifest["outputs"]:
            data = _get(clients, stack_settings, entry["key"])
            assert entry["bytes"] == len(data)
            assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    mixed = json.loads(read_outputs(clients, stack_settings, keys["mixed"])["manifest.json"])
    assert [p["engine"] for p in mixed["pages"]] == ["text-layer", "rapidocr"]
    scan_md = read_outputs(clients, stack_settings, keys["scan"])["document.md"].decode()
    assert "quick brown dog" in scan_md


def test_born_digital_markdown_keeps_every_word_of_the_text_layer(
    stack_settings: Settings, clients: Clients
) -> None:
    # Given a born-digital PDF
    source = SAMPLES / "pysf__multicolumn.pdf"
    key = upload(clients, stack_settings, source, "words.pdf")
    # When it is converted
    drain(stack_settings, clients)
    # Then every word of its text layer is in document.md
    # (compared after NFKC, which spells out ligatures such as "ﬃ", and with words that
    # the PDF hyphenated at a line end joined, as pagedrop joins them)
    markdown = read_outputs(clients, stack_settings, key)["document.md"].decode()
    found = set(re.findall(r"\w+", unicodedata.normalize("NFKC", markdown)))
    with pymupdf.open(source) as pdf:
        text = "".join(page.get_text() for page in pdf)
    text = re.sub(r"(\w)-\n(\w)", r"\1\2", text)  # "Maece-\nnas" is the word "Maecenas"
    words = set(re.findall(r"\w+", unicodedata.normalize("NFKC", text)))
    missing = words - found
    assert not missing, sorted(missing)[:20]


def test_elements_json_follows_the_element_contract(
    stack_settings: Settings, clients: Clients
) -> None:
    key = upload(clients, stack_settings, SAMPLES / "mixed.pdf", "contract/mixed.pdf")
    drain(stack_settings, clients)
    elements = json.loads(read_outputs(clients, stack_settings, key)["elements.json"])
    assert elements, "no elements"
    types = {
        "Title",
        "NarrativeText",
        "ListItem",
        "Table",
        "Formula",
        "Image",
        "FigureCaption",
        "Header",
        "Footer",
        "PageNumber",
        "UncategorizedText",
    }
    for element in elements:
        assert element["type"] in types
        assert re.fullmatch(r"[0-9a-f]{32}", element["element_id"])
        meta = element["metadata"]
        assert meta["filename"] == "mixed.pdf"
        assert meta["filetype"] == "application/pdf"
        assert meta["page_number"] in (1, 2)
        coords = meta["coordinates"]
        assert coords["system"] == "PixelSpace"
        for x, y in coords["points"]:
            assert 0 <= x <= coords["layout_width"] and 0 <= y <= coords["layout_height"]
    assert len({e["element_id"] for e in elements}) == len(elements)
    assert {e["metadata"]["engine"] for e in elements} == {"text-layer", "rapidocr"}


def test_hostile_file_fails_with_its_category_and_the_worker_goes_on(
    stack_settings: Settings, clients: Clients
) -> None:
    name, category = "pypdf__r6-both-passwords.pdf", "encrypted"
    # Given a broken file followed by a good one
    bad = upload(clients, stack_settings, HOSTILE / name, f"hostile/{name}")
    good = upload(clients, stack_settings, SAMPLES / "pysf__multicolumn.pdf", "after/good.pdf")
    # When one worker drains the queue
    drain(stack_settings, clients)
    # Then the broken file is FAILED with its category and a sentence, with no outputs ...
    item = _item(clients, stack_settings, bad)
    assert item["status"] == "FAILED"
    assert item["error"]["category"] == category
    assert item["error"]["message"].endswith(".")
    assert "manifest.json" not in read_outputs(clients, stack_settings, bad)
    # ... and the next document is converted all the same; the queue is empty
    assert _item(clients, stack_settings, good)["status"] == "SUCCEEDED"
    attrs = clients.sqs.get_queue_attributes(
        QueueUrl=stack_settings.queue_url, AttributeNames=["All"]
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_a_pdf_named_png_is_read_as_a_pdf(stack_settings: Settings, clients: Clients) -> None:
    key = upload(
        clients, stack_settings, HOSTILE / "wrongext__minimal-document.png", "wrong/ext.png"
    )
    drain(stack_settings, clients)
    item = _item(clients, stack_settings, key)
    assert item["status"] == "SUCCEEDED", item.get("error")
    manifest = json.loads(read_outputs(clients, stack_settings, key)["manifest.json"])
    assert manifest["source"]["content_type"] == "application/pdf"


def test_duplicate_delivery_is_processed_once(stack_settings: Settings, clients: Clients) -> None:
    # Given an upload whose event is delivered a second time
    key = upload(clients, stack_settings, SAMPLES / "pysf__multicolumn.pdf", "dup/doc.pdf")
    messages = clients.sqs.receive_message(
        QueueUrl=stack_settings.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    )["Messages"]
    for message in messages:
        for _ in range(2):
            clients.sqs.send_message(QueueUrl=stack_settings.queue_url, MessageBody=message["Body"])
        clients.sqs.delete_message(
            QueueUrl=stack_settings.queue_url, ReceiptHandle=message["ReceiptHandle"]
        )
    # When a worker drains the queue
    stats = drain(stack_settings, clients)
    # Then the document was converted once, and the duplicate recognised
    item = _item(clients, stack_settings, key)
    assert item["status"] == "SUCCEEDED"
    assert item["attempt"] == 1
    assert stats.outcomes.get("SUCCEEDED") == 1
    assert stats.outcomes.get("duplicate") == 1


def test_test_event_and_output_keys_cause_no_work(
    stack_settings: Settings, clients: Clients
) -> None:
    # Given the s3:TestEvent the notification set-up queued, and an event naming an output key
    body = json.dumps(
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "bucket": {"name": stack_settings.bucket},
                        "object": {"key": f"{stack_settings.output_prefix}x.pdf/document.md"},
                    },
                }
            ]
        }
    )
    clients.sqs.send_message(QueueUrl=stack_settings.queue_url, MessageBody=body)
    clients.s3.put_object(
        Bucket=stack_settings.bucket, Key=f"{stack_settings.output_prefix}y/z.md", Body=b"x"
    )
    # When a worker drains the queue
    stats = drain(stack_settings, clients)
    # Then nothing was claimed or written, and the queue is empty
    assert clients.dynamodb.scan(TableName=stack_settings.table_name)["Count"] == 0
    assert stats.outcomes.get("ignored") == 1
    attrs = clients.sqs.get_queue_attributes(
        QueueUrl=stack_settings.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"


def test_poison_message_goes_to_the_dead_letter_queue_with_its_reason(
    stack_settings: Settings, clients: Clients
) -> None:
    clients.sqs.send_message(QueueUrl=stack_settings.queue_url, MessageBody="this is not json")
    drain(stack_settings, clients)
    dead = clients.sqs.receive_message(
        QueueUrl=stack_settings.dlq_url, MessageAttributeNames=["All"], WaitTimeSeconds=1
    )["Messages"]
    assert [m["Body"] for m in dead] == ["this is not json"]
    assert "JSON" in dead[0]["MessageAttributes"]["pagedrop-reason"]["StringValue"]
    attrs = clients.sqs.get_queue_attributes(
        QueueUrl=stack_settings.queue_url, AttributeNames=["All"]
    )["Attributes"]
    assert (
        attrs["ApproximateNumberOfMessages"]
        == attrs["ApproximateNumberOfMessagesNotVisible"]
        == "0"
    )


def test_encoded_keys_land_at_their_decoded_output_path(
    stack_settings: Settings, clients: Clients
) -> None:
    relative = "déjà vu/a+b c.pdf"
    key = upload(clients, stack_settings, SAMPLES / "pysf__multicolumn.pdf", relative)
    drain(stack_settings, clients)
    assert _item(clients, stack_settings, key)["status"] == "SUCCEEDED"
    expected = f"{stack_settings.output_prefix}{relative}/manifest.json"
    assert json.loads(_get(clients, stack_settings, expected))["source"]["key"] == key


def test_a_new_version_replaces_the_outputs_of_the_old(
    stack_settings: Settings, clients: Clients, tmp_path: Path
) -> None:
    # Given a 3-page document converted, then overwritten by a 1-page one
    key = upload(clients, stack_settings, SAMPLES / "pysf__multicolumn.pdf", "v/doc.pdf")
    drain(stack_settings, clients)
    upload(clients, stack_settings, HOSTILE / "wrongext__minimal-document.png", "v/doc.pdf")
    # When the new version is converted
    drain(stack_settings, clients)
    # Then status and outputs describe the new version only
    item = _item(clients, stack_settings, key)
    head = clients.s3.head_object(Bucket=stack_settings.bucket, Key=key)
    assert item["status"] == "SUCCEEDED"
    assert item["etag"] == head["ETag"].strip('"')
    outputs = read_outputs(clients, stack_settings, key)
    assert json.loads(outputs["manifest.json"])["page_count"] == 1
    assert not any(name.startswith("pages/0002") for name in outputs)


def test_object_metadata_chooses_engine_pages_and_languages(
    stack_settings: Settings, clients: Clients
) -> None:
    # Given a born-digital PDF uploaded asking for OCR of page 2 only, in Latin
    key = f"{stack_settings.input_prefix}meta/doc.pdf"
    clients.s3.upload_file(
        str(SAMPLES / "pysf__multicolumn.pdf"),
        stack_settings.bucket,
        key,
        ExtraArgs={
            "Metadata": {
                "pagedrop-engine": "rapidocr",
                "pagedrop-pages": "2",
                "pagedrop-languages": "lat",
            }
        },
    )
    # When it is converted
    drain(stack_settings, clients)
    # Then only page 2 was converted, by OCR, and its elements carry the declared language
    outputs = read_outputs(clients, stack_settings, key)
    manifest = json.loads(outputs["manifest.json"])
    assert [(p["page"], p["engine"]) for p in manifest["pages"]] == [(2, "rapidocr")]
    assert "pages/0001.md" not in outputs
    elements = json.loads(outputs["elements.json"])
    assert elements and {e["metadata"]["page_number"] for e in elements} == {2}
    assert {tuple(e["metadata"]["languages"]) for e in elements} == {("lat",)}
    assert outputs["document.md"].decode().startswith("<!-- page 2 -->")


HOSTILE_OUTCOMES = {
    "plumber__empty.pdf": ("FAILED", "corrupt"),
    "qpdf__bad1.pdf": ("FAILED", "unsupported"),
    "pypdf__r6-both-passwords.pdf": ("FAILED", "encrypted"),
    "wrongext__minimal-document.png": ("SUCCEEDED", None),
    "qpdf__pages-loop.pdf": ("SUCCEEDED", None),
    "pdfjs__xref_command_missing.pdf": ("SUCCEEDED", None),
    "safedocs__Dual-startxref.pdf": ("SUCCEEDED", None),
    "safedocs__PDF-NoPageContents.pdf": ("SUCCEEDED", None),
}


def test_every_hostile_file_ends_in_a_clear_final_state(
    stack_settings: Settings, clients: Clients
) -> None:
    # Given every broken file of the corpus in one batch (the test fails if one is missing)
    assert {p.name for p in HOSTILE.iterdir()} == set(HOSTILE_OUTCOMES)
    keys = {
        name: upload(clients, stack_settings, HOSTILE / name, f"all/{name}")
        for name in HOSTILE_OUTCOMES
    }
    # When one worker drains the queue
    drain(stack_settings, clients)
    # Then each is readable and converted, or FAILED with its category
    for name, (status, category) in HOSTILE_OUTCOMES.items():
        item = _item(clients, stack_settings, keys[name])
        assert item["status"] == status, (name, item.get("error"))
        if category:
            assert item["error"]["category"] == category, name
    dual = read_outputs(clients, stack_settings, keys["safedocs__Dual-startxref.pdf"])[
        "document.md"
    ]
    assert b"Second startxref" in dual and b"First startxref" not in dual

"""The soak test, small: worker processes killed while converting lose nothing, double nothing.

``scripts/soak.py`` runs the same code with 500 documents (docs/reliability.md).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from handler.aws import Clients
from handler.local.endpoint import LocalEndpoint
from handler.local.soak import SoakConfig, format_summary, run_soak
from handler.local.soak.checks import ExpectedDocument, audit_outputs, output_checks, scan_table
from handler.local.soak.corpus import make_corpus
from handler.settings import Settings
from handler.storage.keys import output_prefix_for
from tests.conftest import drain

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# 20 documents take about 5 s here, plus up to a visibility timeout (10 s) for the killed
# worker's messages to come back; the bound leaves room for a busy machine.
SOAK_BOUND_S = 90


@pytest.mark.timeout(SOAK_BOUND_S * 2)
def test_a_killed_worker_loses_no_document_and_doubles_none(
    endpoint: LocalEndpoint, tmp_path: Path
) -> None:
    # Given 20 small documents, two worker processes and one SIGKILL, due a second into the
    # run (on the clock, so that it cannot miss a run that ends between two table scans)
    config = SoakConfig(
        documents=20,
        workers=2,
        kills=1,
        stops=0,
        disrupt_every_s=1.0,
        seed=7,
        timeout_s=SOAK_BOUND_S,
        settle_s=30,
        log_dir=tmp_path,
    )
    # When the soak runs
    report = run_soak(config, endpoint=endpoint)
    # Then the kill happened, a replacement was started, and every check passes: every
    # document SUCCEEDED once, the table and the outputs agree, the queues are empty
    summary = format_summary(report)
    assert report.disruptions.kills == 1, summary
    assert report.processes_started == config.workers + 1, summary
    assert [c.name for c in report.checks if not c.passed] == [], summary
    assert report.documents == 20


def test_the_audit_catches_a_missing_output_and_a_manifest_of_an_old_version(
    stack_settings: Settings, clients: Clients
) -> None:
    # Given two documents converted by a worker
    s = stack_settings
    documents = make_corpus(2, random.Random(1), scan_share=0)
    expected = {}
    for doc in documents:
        key = s.input_prefix + doc.relative
        clients.s3.put_object(Bucket=s.bucket, Key=key, Body=doc.data)
        prefix = output_prefix_for(key, s.input_prefix, s.output_prefix)
        expected[f"{s.bucket}/{key}"] = ExpectedDocument(key, prefix, doc.pages)
    drain(s, clients)
    items = scan_table(clients.dynamodb, s.table_name)
    first, second = expected.values()
    # When one output of the first disappears and the second's source is overwritten
    clients.s3.delete_object(Bucket=s.bucket, Key=first.output_prefix + "document.md")
    clients.s3.put_object(Bucket=s.bucket, Key=second.key, Body=documents[0].data)
    audit = audit_outputs(clients.s3, s.bucket, s.output_prefix, expected, items)
    # Then the audit names both, while the counts still agree
    results = {check.name: check for check in output_checks(audit, items)}
    assert results["table SUCCEEDED count equals manifests under the output prefix"].passed
    manifests = results["one manifest per document, naming the source's current version"]
    assert not manifests.passed
    assert second.key in manifests.detail and "HEAD" in manifests.detail
    outputs = results["every listed output exists with its size and sha256; nothing unlisted"]
    assert not outputs.passed
    assert f"{first.output_prefix}document.md: listed in the manifest but missing" in outputs.detail

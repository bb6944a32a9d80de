"""What ``pagedrop dlq list`` and ``pagedrop dlq redrive`` print."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TextIO

from handler.console.tables import render_table
from handler.dead_letters import DeadLetters, RedriveReport

EXIT_OK = 0


def show_dead_letters(letters: DeadLetters, limit: int, *, as_json: bool, out: TextIO) -> int:
    """The messages in the DLQ (left there) and the FAILED/exhausted documents."""
    messages, documents = letters.peek(limit), letters.exhausted(limit)
    if as_json:
        listed = {
            "messages": [{**asdict(m), "keys": list(m.keys)} for m in messages],
            "exhausted": [asdict(d) for d in documents],
        }
        for message in listed["messages"]:
            message.pop("refs")
        out.write(json.dumps(listed, indent=2) + "\n")
        return EXIT_OK
    out.write(f"messages in the dead-letter queue: {len(messages)}\n")
    if messages:
        rows = [("message", "receives", "keys", "reason")]
        rows += [
            (m.message_id, str(m.receive_count), ",".join(m.keys) or "-", m.reason or "")
            for m in messages
        ]
        out.write(render_table(rows) + "\n")
    out.write(f"\ndocuments FAILED/exhausted: {len(documents)}\n")
    if documents:
        rows = [("key", "version", "failed at", "error")]
        rows += [(d.key, d.version or "-", d.failed_at, d.message) for d in documents]
        out.write(render_table(rows) + "\n")
    return EXIT_OK


def show_redrive(report: RedriveReport, *, exhausted: bool, out: TextIO, err: TextIO) -> None:
    """What a redrive moved and re-queued (or would, with ``--dry-run``), and its failures."""
    move, requeue = ("would move", "would re-queue") if report.dry_run else ("moved", "re-queued")
    lines = [f"{move} {len(report.moved)} message(s) from the dead-letter queue to the work queue"]
    lines += [
        f"  {m.message_id}  {','.join(m.keys) or '(poison: ' + str(m.reason) + ')'}"
        for m in report.moved
    ]
    if exhausted:
        lines.append(f"{requeue} {len(report.requeued)} FAILED/exhausted document(s)")
        lines += [f"  {d.key}  (version {d.version or '-'})" for d in report.requeued]
        lines += [
            f"  {d.key}  skipped: a moved message names the same version" for d in report.skipped
        ]
    out.write("".join(f"{line}\n" for line in lines))
    err.write("".join(f"pagedrop dlq redrive: {failure}\n" for failure in report.failures))

"""What a soak run was asked to do (:class:`SoakConfig`) and what happened (:class:`SoakReport`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from handler.local.soak.checks import Check
from handler.local.soak.disrupt import Disruptions


@dataclass(frozen=True, slots=True)
class SoakConfig:
    documents: int = 500
    workers: int = 2
    kills: int = 10  # SIGKILLs, at most (the run may finish first)
    stops: int = 1  # SIGTERMs, at most
    # Mean seconds between two disruptions; None: spread them over the run's progress.
    disrupt_every_s: float | None = None
    seed: int = 0
    scan_share: float = 0.02  # share of documents that are image scans (OCR)
    timeout_s: float = 1200.0  # for every document to be final
    settle_s: float = 45.0  # for the queues to empty once every document is final
    upload_threads: int = 8
    log_dir: Path | None = None  # worker logs; a new temporary folder by default
    # PAGEDROP_* settings for the workers on top of the soak's timings (e.g. a receive batch).
    worker_env: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class SoakReport:
    config: SoakConfig
    documents: int
    pages: int
    scans: int
    processes_started: int
    disruptions: Disruptions
    retried_documents: int  # documents whose final attempt was not their first
    extra_attempts: int  # sum of (attempt - 1)
    suppressed: dict[str, int]  # deliveries turned away: duplicate, busy, stale
    outcomes: dict[str, int]  # every outcome the workers logged ("done", "interrupted"...)
    resumed_pages: int  # pages a retry took from an earlier attempt's checkpoint
    processing_s: float  # first upload to every document final (or the timeout)
    wall_s: float  # the whole run: endpoint, stack, uploads, conversion, checks
    log_dir: Path
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["config"]["log_dir"] = str(self.config.log_dir) if self.config.log_dir else None
        data["log_dir"] = str(self.log_dir)
        data["passed"] = self.passed
        data["documents_per_s"] = _rate(self.documents, self.processing_s)
        return data


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 2) if seconds > 0 else 0.0


def format_summary(report: SoakReport) -> str:
    """The run as a plain-text table: what happened, then every check with PASS or FAIL."""
    d, c = report.disruptions, report.config
    pdfs = report.documents - report.scans
    suppressed = ", ".join(f"{k} {v}" for k, v in report.suppressed.items())
    facts = [
        (
            "documents",
            f"{report.documents} ({report.pages} pages: {pdfs} PDFs, {report.scans} scans)",
        ),
        ("workers", f"{c.workers} at a time; {report.processes_started} processes started"),
        (
            "kills",
            f"{d.kills} SIGKILL ({d.kills_mid_document} mid-document), "
            f"{d.stops} SIGTERM; planned {c.kills} + {c.stops}, seed {c.seed}",
        ),
        (
            "retries",
            f"{report.retried_documents} documents, {report.extra_attempts} extra attempts",
        ),
        ("duplicates suppressed", f"{sum(report.suppressed.values())} ({suppressed})"),
        ("resumed pages", str(report.resumed_pages)),
        ("worker outcomes", ", ".join(f"{k} {v}" for k, v in report.outcomes.items()) or "-"),
        ("processing time", f"{report.processing_s:.1f} s (first upload to every document final)"),
        (
            "throughput",
            f"{_rate(report.documents, report.processing_s)} documents/s, "
            f"{_rate(report.pages, report.processing_s)} pages/s",
        ),
        ("wall time", f"{report.wall_s:.1f} s"),
        ("worker logs", str(report.log_dir)),
    ]
    width = max(len(label) for label, _ in facts)
    lines = [f"{label.ljust(width)}  {value}" for label, value in facts]
    check_width = max(len(check.name) for check in report.checks)
    lines += ["", f"{'check'.ljust(check_width)}  result  detail"]
    lines += [
        f"{check.name.ljust(check_width)}  {'PASS' if check.passed else 'FAIL'}    {check.detail}"
        for check in report.checks
    ]
    lines += ["", f"RESULT: {'PASS' if report.passed else 'FAIL'}"]
    return "\n".join(lines)

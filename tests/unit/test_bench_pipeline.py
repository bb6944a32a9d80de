"""The performance scripts' pure parts: /proc readers, utilisation, ratios, tables, targets."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bench import _proc
from bench._tables import ratio, table, target_line, verdict
from bench.pipeline import report, targets
from bench.scaleout import rows_for

# A real /proc/PID/stat line whose command name holds a space and a parenthesis.
STAT_LINE = (
    "4242 (python (x) y) S 4100 4242 4100 0 -1 4194304 1500 0 0 0 "
    "250 40 7 3 20 0 9 0 123456 1000000 5000 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1"
)
MACHINE_STAT = "cpu  100 5 50 800 40 3 2 10 0 0\ncpu0 50 2 25 400 20 1 1 5 0 0\nintr 12345\n"


def test_parse_stat_reads_times_after_a_name_with_spaces_and_parentheses() -> None:
    stat = _proc.parse_stat(STAT_LINE)

    assert (stat.pid, stat.ppid) == (4242, 4100)
    assert (stat.utime, stat.stime, stat.cutime, stat.cstime) == (250, 40, 7, 3)
    assert stat.ticks == 300


def test_parse_status_kib_finds_the_field_or_none() -> None:
    status = "Name:\tpython\nVmPeak:\t  900000 kB\nVmHWM:\t  123456 kB\nVmRSS:\t 100 kB\n"

    assert _proc.parse_status_kib(status, "VmHWM") == 123456
    assert _proc.parse_status_kib(status, "VmSwap") is None


def test_machine_stat_counts_idle_and_iowait_as_not_busy() -> None:
    busy, total = _proc.parse_machine_stat(MACHINE_STAT)

    assert total == 100 + 5 + 50 + 800 + 40 + 3 + 2 + 10
    assert busy == total - 800 - 40


def test_utilisation_is_cpu_time_over_wall_time_and_cores() -> None:
    start = _proc.CpuSnapshot(10.0, {"worker": 5.0, "endpoint": 1.0}, (1000, 4000))
    end = _proc.CpuSnapshot(20.0, {"worker": 22.0, "endpoint": 2.0}, (2700, 6000))

    shares = _proc.utilisation(start, end, n_cores=2)

    assert shares["worker"] == pytest.approx(17.0 / 20.0)
    assert shares["endpoint"] == pytest.approx(0.05)
    assert shares["machine"] == pytest.approx(1700 / 2000)


def test_utilisation_refuses_an_empty_window() -> None:
    snap = _proc.CpuSnapshot(1.0, {}, (0, 0))

    with pytest.raises(ValueError):
        _proc.utilisation(snap, snap, n_cores=1)


def test_fake_proc_tree_sums_cpu_and_peak_memory_of_descendants(tmp_path: Path) -> None:
    # Given a parent (10) with a child (11) and a grandchild (12), and an unrelated 20.
    for pid, ppid, ticks, hwm in (
        (10, 1, 100, 1024),
        (11, 10, 50, 2048),
        (12, 11, 30, 0),
        (20, 1, 999, 4096),
    ):
        folder = tmp_path / str(pid)
        folder.mkdir()
        line = STAT_LINE.replace("4242 (", f"{pid} (", 1).replace(" S 4100 ", f" S {ppid} ", 1)
        folder.joinpath("stat").write_text(line.replace(" 250 40 7 3 ", f" {ticks} 0 0 0 ", 1))
        folder.joinpath("status").write_text(f"Name:\tx\nVmHWM:\t{hwm} kB\n")
    (tmp_path / "self").mkdir()  # not a pid: ignored

    assert sorted(_proc.descendants(10, tmp_path)) == [10, 11, 12]
    assert _proc.cpu_seconds(10, tmp_path) == pytest.approx(180 / _proc.CLK_TCK)
    assert _proc.peak_rss_mib(10, tmp_path) == pytest.approx(3.0)
    assert _proc.peak_rss_mib(99, tmp_path) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_this_process_has_cpu_time_and_a_peak() -> None:
    sum(range(200_000))  # some CPU time of our own

    assert _proc.cpu_seconds(os.getpid()) > 0
    assert (_proc.peak_rss_mib(os.getpid()) or 0) > 1
    busy, total = _proc.machine_ticks()
    assert 0 <= busy <= total


def test_ratio_and_verdicts() -> None:
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(None, 2.0) is None
    assert ratio(1.0, 0.0) is None
    assert verdict(1.15, 1.15, at_most=True) == "met"
    assert verdict(1.16, 1.15, at_most=True) == "not met"
    assert verdict(0.84, 0.85, at_most=False) == "not met"
    assert verdict(None, 1.0, at_most=True) == "not measured"
    assert target_line("x", 0.9, 1.0, at_most=True) == "x: 0.90 (target <= 1): met"


def test_table_aligns_plain_text_and_writes_markdown() -> None:
    rows = [["a", 1, 0.5], ["long name", None, 12.345]]

    plain = table(["doc", "pages", "s"], rows).splitlines()
    markdown = table(["doc", "pages", "s"], rows, markdown=True).splitlines()

    assert plain[0].split() == ["doc", "pages", "s"]
    assert plain[2].startswith("a ") and plain[2].endswith("0.50")
    assert plain[3].split() == ["long", "name", "-", "12.35"]
    assert markdown[:2] == ["| doc | pages | s |", "|---|---|---|"]
    assert markdown[3] == "| long name | - | 12.35 |"


def _record(
    ratio_digital: float, ratio_scanned: float, busy: float, memory: dict[str, float]
) -> dict:
    def batch(name: str, value: float) -> dict:
        return {
            "name": name,
            "pages": 2,
            "engine_only_s": 1.0,
            "engine_convert_s": 0.9,
            "end_to_end_s": value,
            "ratio": value,
            "ratio_whole_path": value * 0.9,
            "pages_per_s_end_to_end": 2 / value,
            "cpu": {"workers": busy, "endpoint": 0.1, "machine": 0.9},
            "peak_mib": 500.0,
            "documents": [
                {
                    "document": f"{name}.pdf",
                    "pages": 2,
                    "engine_only_s": 1.0,
                    "engine_convert_s": 0.9,
                    "worker_total_s": 1.1,
                    "worker_convert_s": 1.0,
                }
            ],
        }

    return {
        "run": {"machine": "test machine"},
        "batches": [batch("born-digital", ratio_digital), batch("scanned", ratio_scanned)],
        "memory_mib": memory,
    }


def test_targets_judge_each_measured_value() -> None:
    record = _record(1.9, 1.2, 0.9, {"10 pages": 100.0, "200 pages": 160.0})

    found = {t["name"]: t for t in targets(record)}

    assert found["overhead ratio, born-digital"]["line"].endswith(": met")
    assert found["overhead ratio, scanned"]["line"].endswith("not met")
    assert found["worker CPU busy, scanned batch"]["value"] == 0.9
    assert found["peak memory 200 pages / 10 pages"]["value"] == pytest.approx(1.6)


def test_targets_say_not_measured_without_memory() -> None:
    record = _record(1.0, 1.0, 0.9, {})

    lines = [t["line"] for t in targets(record)]

    assert lines[-1].endswith("not measured")


def test_report_lists_batches_documents_and_targets() -> None:
    record = _record(1.5, 1.1, 0.95, {"10 pages": 100.0, "200 pages": 120.0})
    record["targets"] = targets(record)

    text = report(record)

    assert "born-digital" in text and "scanned.pdf" in text
    assert "95%" in text  # the worker's CPU share
    assert "overhead ratio, scanned: 1.10 (target <= 1.15): met" in text
    assert text.endswith("machine: test machine")


def test_scaleout_rows_show_speed_up_over_one_worker() -> None:
    results = [
        {
            "workers": 1,
            "pages": 10,
            "seconds": 20.0,
            "pages_per_s": 0.5,
            "cpu": {"workers": 0.5, "machine": 0.6},
        },
        {
            "workers": 2,
            "pages": 10,
            "seconds": 12.5,
            "pages_per_s": 0.8,
            "cpu": {"workers": 0.9, "machine": 0.95},
        },
    ]

    rows = rows_for(results)

    assert rows[0][4] == 1.0
    assert rows[1][4] == pytest.approx(1.6)
    assert rows[1][5:] == ["90%", "95%"]

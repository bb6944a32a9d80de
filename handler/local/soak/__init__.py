"""The soak test (``scripts/soak.py``): worker processes killed while converting documents,
then a check that nothing was lost and nothing doubled."""

from handler.local.soak.checks import Check
from handler.local.soak.report import SoakConfig, SoakReport, format_summary
from handler.local.soak.run import run_soak

__all__ = ["Check", "SoakConfig", "SoakReport", "format_summary", "run_soak"]

"""Restore drills: prove recovery from one region down to each merchant's compensation."""

from drkit.drill.report import DrillReport, StepResult
from drkit.drill.runner import DrillOptions, run_drill

__all__ = ["DrillOptions", "DrillReport", "StepResult", "run_drill"]

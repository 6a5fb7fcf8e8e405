"""The listening report: one self-contained HTML folder per run (the headline with real and
generated bars' spectrograms, players, spectrograms, metrics, loss curves). ``build_report`` is
the entry point; ``pipeline.stages.report`` runs it."""

from pipeline.report.build import AudioItem, build_report, collect_samples
from pipeline.report.spread import BarComparison

__all__ = ["AudioItem", "BarComparison", "build_report", "collect_samples"]

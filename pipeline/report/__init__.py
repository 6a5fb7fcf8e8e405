"""The listening report: one self-contained HTML folder per run (players, spectrograms, metrics,
loss curves). ``build_report`` is the entry point; ``pipeline.stages.report`` runs it."""

from pipeline.report.build import AudioItem, build_report, collect_samples

__all__ = ["AudioItem", "build_report", "collect_samples"]

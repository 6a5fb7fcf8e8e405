"""Watching training and logging results: progress metrics, previews and MLflow.

The stages use this package; the training library (``pipeline.train``) knows nothing of it.
Modules import MLflow, torch and the metrics lazily or per module, so reading a run record
(``runs``) stays cheap.
"""

"""Reproducing a published result: a preset's plan (dataset, settings, GPU hours, the paper's
numbers) and, after a run, the paper's table beside ours."""

"""``overrides.csv`` beside a corpus: known tempo, first downbeat and meter per recording.
The fetch stage writes it for datasets with tempo metadata; analyze reads it
(:func:`pipeline.stages.analyze.read_overrides`) instead of estimating those tracks."""

OVERRIDES_FILE = "overrides.csv"
OVERRIDE_COLUMNS = ("path", "bpm", "first_downbeat", "meter")
OVERRIDE_HEADER = ",".join(OVERRIDE_COLUMNS)

"""Taking a trained generator out of the pipeline: loop-tagged WAVs and sample packs for a DAW
(``bargan export``), and the generator as ONNX (``bargan export --onnx``)."""

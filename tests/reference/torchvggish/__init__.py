# ruff: noqa
"""harritaylor/torchvggish (commit f3f90969ce8fb77a05d984b892ddf662e8466377), vendored for tests.

The reference PyTorch port of VGGish that ``pipeline.metrics.vggish`` is tested against:
torchvggish/vggish.py, vggish_input.py, mel_features.py and vggish_params.py from the GitHub
repository at that commit, unchanged but for a header naming the source (Apache License 2.0,
see LICENSE beside this file). The repository's package has no ``__init__.py``; this one is ours.
PyPI's torchvggish 0.2 is an older snapshot whose Postprocessor downloads its parameters when
constructed, so it cannot run offline: that is why the port is vendored.
"""

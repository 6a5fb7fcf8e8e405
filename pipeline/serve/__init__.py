"""``bargan serve``: a local web page to explore a trained generator."""

# ruff: noqa
"""Richardson & Weiss's NDB as LoopTest used it (allenhung1025/LoopTest commit
b105df76344e4393f1db9116bc64cbffc1dd83aa, evaluation/NDB_JS/ndb.py), vendored for tests.

The reference ``pipeline.metrics.ndb`` is tested against: ndb.py unchanged but for a header naming
the source (MIT licence of the LoopTest repository, see LICENSE beside this file; the original,
eitanrich/gans-n-gmms utils/ndb.py, has no licence file). This ``__init__.py`` is ours. The file
calls ``KMeans(..., n_jobs=-1)``, which scikit-learn 1.0 removed, and draws its dimensions from
the unseeded global ``np.random``: the test replaces its ``KMeans`` with a seeded one and seeds
``np.random`` instead of editing the file.
"""

"""Lambda logic of the cloud side (docs/architecture.md §1): one module per concern.

Handlers in ``cloud/lambdas/<name>/app.py`` only parse the invocation and call
one function here; every AWS call goes through :mod:`oneeye.cloud.dal.store`, so the
same code runs against AWS, the local stack's moto server and the tests.
"""

"""The cloud side (docs/architecture.md §1), in two rooms and a few shared modules.

- ``functions/``: one module per Lambda, named after it (``amber_alert``,
  ``enrich_match``, ``device_health``, ``gallery_indexer``, ``upload_url``,
  ``upload_status``, ``cases``). Handlers in ``cloud/lambdas/<name>/app.py`` only
  build the deps at cold start and call one function there.
- ``dal/``: every AWS call (the state table's four namespaces, the cases and
  agencies tables, the bucket and its one key grammar, SNS, SQS, IoT, Secrets
  Manager), so the same code runs against AWS, the local stack's moto server and
  the tests.
- Shared: ``common`` (results, run-once), ``api`` (HTTP API events), ``settings``,
  ``devices`` (the sender rule), ``agencies`` (tokens, rate limit, audit), ``grants``,
  ``customers`` (the bank's API), ``uploads`` (reason codes), ``indexer_commands``
  (the indexer queue's typed commands: remove, learn, remove_template, review), and
  ``backoffice``: the one way the dashboard reaches the cloud.
"""

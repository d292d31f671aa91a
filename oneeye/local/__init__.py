"""The embedded local stack (``oneeye up``): AWS stand-ins that run the cloud's own code.

Each module replaces one AWS service and nothing more; the Lambda handlers,
the dashboard and the edge run unchanged against them (docs/architecture.md §5).
"""

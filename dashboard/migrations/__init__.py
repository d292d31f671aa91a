"""The dashboard database's Alembic migrations (``env.py``, ``versions/``).

They run at every start (:func:`dashboard.store.upgrade`), with no alembic.ini: the
dashboard's own engine lends its connection. dashboard/README.md says how to add one.
"""

"""Restartable background work: the job tables (``store``), the worker loop (``worker``), where it runs
(``executors``: local or ``celery_app``), and the step ``index`` runs after a scan (``enrich``)."""

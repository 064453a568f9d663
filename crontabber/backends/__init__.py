"""Django Tasks backends crontabber ships for workers that have none of their own (celery.py)."""

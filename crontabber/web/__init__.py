"""What operators read: one health verdict (health.py: the endpoint, `cronlist --check`,
the admin's status), the Prometheus metrics (metrics.py), the job listing of `cronlist`
(listing.py), and the views that serve the first two (views.py; crontabber.urls)."""

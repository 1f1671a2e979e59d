"""Jobs: work that runs outside a request, in-process or on Celery workers.

``broker`` configures Celery from settings; ``dispatch`` hands work to
whichever runs it; ``tasks`` are the thin Celery tasks (the job bodies live in
the domains); ``runtime`` gives each worker process its event loop and
database; ``maintenance`` holds the periodic work and its schedule.
"""

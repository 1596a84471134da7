"""Entry points beside the HTTP API: functions that AWS invokes with events or on a schedule rather than
with requests (the jobs table's stream consumer, the pipeline's task handler, the hourly sweep). Each is a
thin adapter from its event to the services; ``workers.dependencies`` is the one module here that builds
stores."""

"""Generic utilities, no business rules: settings, Parameter Store and Secrets Manager caches, AWS
clients, retries, logging, metrics, the clock, generic errors."""

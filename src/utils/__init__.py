"""Cross-cutting utilities: settings, configuration, secrets, logging, errors, retries."""

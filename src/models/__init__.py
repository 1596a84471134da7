"""The domain's shapes and rules, no I/O: a job, its states and ids, the domain's errors."""

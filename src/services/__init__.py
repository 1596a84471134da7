"""Business rules (job_service) and the storage layer that holds every boto3 call."""

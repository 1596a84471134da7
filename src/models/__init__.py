"""The one shape of a job."""

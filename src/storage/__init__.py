"""Storage layer: every boto3 call to the jobs table and the buckets, and their error translation."""

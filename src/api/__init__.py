"""HTTP layer: the Lambda entry point, the router and request parsing."""

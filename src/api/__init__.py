"""The HTTP layer: the Lambda entry point, routes, handlers, request parsing, the error map. Talks to
services only; ``api.dependencies`` alone builds the stores."""

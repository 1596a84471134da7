"""The route handlers, grouped by resource. Each is thin: parse the request (``api.requests``), call a
service from ``api.dependencies``, wrap the result in the envelope (``api.http.ok``). Errors are raised,
never answered here: ``api.errors`` turns them into responses in one place."""

"""Entry points that are not HTTP: functions the stack runs on a schedule or on events (the sweep). Each is
a handler beside its own dependency setup (``workers.dependencies``), calling the same services as the api."""

"""Business rules, one class per area, each built with the stores it uses (``api.dependencies`` builds
them): no HTTP shapes, no boto3."""

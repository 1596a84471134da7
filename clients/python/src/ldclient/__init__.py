"""ldclient: the command-line client (and a small Python client) of the Location Detection job API."""

from ldclient.api import Client, Created, RetryPolicy
from ldclient.errors import ApiError, ClientError, NetworkError, UploadRefused, WaitTimeout

__version__ = "0.1.0"
__all__ = [
    "ApiError",
    "Client",
    "ClientError",
    "Created",
    "NetworkError",
    "RetryPolicy",
    "UploadRefused",
    "WaitTimeout",
]

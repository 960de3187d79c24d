"""What a caller installs: the conductor API as methods, over RabbitMQ."""

from client.blocking import BlockingConductorClient
from client.core import CallOptions, ConductorClient

__all__ = ["BlockingConductorClient", "CallOptions", "ConductorClient"]

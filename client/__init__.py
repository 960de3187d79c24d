"""What a caller installs: the conductor API as methods, over RabbitMQ."""

from client.blocking import BlockingConductorClient
from client.core import CallOptions, ConductorClient
from client.jobs import Pending, QueuedCall

__all__ = ["BlockingConductorClient", "CallOptions", "ConductorClient", "Pending",
           "QueuedCall"]

"""chat-assignment-lab: prove a chat-assignment policy in simulation and on a real PostgreSQL."""

__version__ = "0.1.0"

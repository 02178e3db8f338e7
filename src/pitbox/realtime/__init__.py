"""Live channels: subscriptions, fan-out to sockets, and the broker between instances."""

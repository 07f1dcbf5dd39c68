"""gRPC adapters shared by the services: server set-up, auth, error details."""

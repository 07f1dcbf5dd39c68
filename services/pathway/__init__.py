"""The pathway service: intake of hospital events over gRPC, the pathway state machine's
SQL projection, and the Kafka consumer that keeps it current (`python -m pathway`)."""

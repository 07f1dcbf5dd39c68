"""The pure domain core: no Kafka, gRPC, SQL or I/O beyond reading values passed in."""

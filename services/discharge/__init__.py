"""The discharge service: the payment-liability clock per episode (Faust) and the
LiabilityService that answers for it (gRPC)."""

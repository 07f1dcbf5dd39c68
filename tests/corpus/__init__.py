"""The bad-input corpus (README.md) and how its records are built."""

"""SQL adapters shared by the services (sqlmodel; SQLite by default, PostgreSQL in production)."""

"""The database: connection pool, embedded PostgreSQL when none is configured, and migrations."""

"""The real system: embedded/external PostgreSQL, numbered SQL migrations, a thin typed client."""

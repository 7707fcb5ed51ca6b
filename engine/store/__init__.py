"""Storage: SQLModel tables, the database engine, migrations and the audit chain."""

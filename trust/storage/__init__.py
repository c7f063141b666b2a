"""Implementations of the repository Protocols declared by the services: SQLite (the embedded
default) and, where an issue asks, PostgreSQL. All SQL lives in this package."""

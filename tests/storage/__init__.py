"""Tests of the storage layer (trust/storage/): SQL layer, migrations, every repository on memory,
SQLite and PostgreSQL."""

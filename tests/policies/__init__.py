"""Tests of the policies package, its SQLite store and the policy CLI."""

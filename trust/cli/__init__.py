"""The ``truststack`` command: one module per noun, loaded lazily by :mod:`trust.cli.main`."""

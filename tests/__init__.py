"""Test package; importable so that Dask workers can unpickle test simulators."""

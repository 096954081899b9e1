"""Benchmarks of the hot paths (see README.md): each script seeds a scratch PostgreSQL database."""

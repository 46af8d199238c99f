"""Experiments: A/B/n tests on blocks, their assignment, exposures and statistics.

The statistics are plain functions (``stats``) over per-arm counts and sums, so reports, the
create form and the tests call the same code, and nothing here needs the database.
"""

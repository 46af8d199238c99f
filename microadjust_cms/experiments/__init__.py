"""Experiments: A/B/n tests on personalized blocks (models, assignment, waffle gating, caps,
exposures) and their statistics. See docs/experiments.md.

The statistics are plain functions (``stats``) over per-arm counts and sums, so reports, the
create form and the tests call the same code, and nothing there needs the database.
"""

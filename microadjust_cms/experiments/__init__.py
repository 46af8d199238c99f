"""Experiments: A/B/n tests on personalized blocks (models, assignment, waffle gating, caps,
exposures). See the README's "Experiments" section."""

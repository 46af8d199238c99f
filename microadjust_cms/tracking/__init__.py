"""Tracking: the collect endpoint, the batch schema, the event store and the ``Event`` model."""

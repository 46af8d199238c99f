"""Rendering: personalized and ranked blocks, the one decision function, previews, the fragment
API, and the per-process caches that keep rendering free of SQL and repeated decoding."""

"""The visitor: the per-request context (``context``), its middleware and the profile stores."""

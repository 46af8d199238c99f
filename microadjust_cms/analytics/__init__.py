"""Editor analytics: per-block and per-page rollups of the event table, and the figures read
from them (``figures``)."""

"""Learning: behaviour features, clustering and the engagement model.

Plain functions over querysets and arrays (DESIGN.md, dependency rules): Celery tasks,
management commands and admin buttons are thin callers. Nothing on the request path imports
scikit-learn through this package except the model scoring that a ``RankedBlock`` needs.
"""

from collections.abc import Callable

#: ``progress(done, total)``: how learning jobs report how far they got (commands draw a bar,
#: the job row stores it).
Progress = Callable[[int, int], None]

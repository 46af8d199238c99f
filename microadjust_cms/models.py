"""Every model of the app, for Django and for migrations: each concept keeps its own in its
package (``segments.models``, ``tracking.models``, ``learning.models``, ``experiments.models``,
``jobs.models``). Import a model from its package; this module is only the app's index."""

from __future__ import annotations

from .analytics.models import BlockRollup, PageRollup, RollupState  # noqa: F401
from .conditions.fields import ConditionField  # noqa: F401  (named by migrations)
from .experiments.models import Arm, ExclusionGroup, Experiment, Exposure  # noqa: F401
from .jobs.models import LearningJob, whole_percent  # noqa: F401
from .learning.models import MAX_FIXED_K, Cluster, ClusteringSettings, ClusterRun, EngagementModel  # noqa: F401
from .segments.models import Segment, referenced_segments  # noqa: F401
from .tracking.models import Event, LoadedBatch  # noqa: F401

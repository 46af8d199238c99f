"""Default values for every ``MICROADJUST_<NAME>`` setting (read through ``get_setting``)."""

# Profile store: dotted path to a ProfileStore subclass.
PROFILE_STORE = "microadjust_cms.visitor.stores.cache.CacheProfileStore"
# Django cache alias used by the cache store; django-redis connection alias for the Redis store.
CACHE_ALIAS = "default"
REDIS_ALIAS = "default"
# Key prefix in the store. Keys look like ``<prefix>:{<visitor id>}:p`` (hash-tagged).
KEY_PREFIX = "ma"
# A profile nobody touched for this many seconds expires (privacy: retention limit).
PROFILE_TTL = 180 * 24 * 3600

# A visit ends after this many idle seconds; the next page view starts a new one.
VISIT_IDLE_SECONDS = 30 * 60

# Visitor cookie.
COOKIE_NAME = "ma_vid"
COOKIE_SALT = "microadjust_cms.visitor"
COOKIE_MAX_AGE = 365 * 24 * 3600
COOKIE_SECURE = False
COOKIE_SAMESITE = "Lax"

# Privacy. Do Not Track and Global Privacy Control stop tracking (no cookie, no profile writes).
HONOUR_DNT = True
# When True nothing is tracked until the consent cookie below is "1".
REQUIRE_CONSENT = False
CONSENT_COOKIE_NAME = "ma_consent"

# How often (seconds) a process checks whether segments were edited elsewhere.
SEGMENT_REFRESH_SECONDS = 1.0

# Time-of-day buckets (start hour inclusive) used by the ``time_of_day`` signal.
TIME_OF_DAY_BUCKETS = (("night", 0), ("morning", 5), ("afternoon", 12), ("evening", 17))

# Collect endpoint limits (bad input gets a 4xx naming the problem; nothing of it is stored).
COLLECT_MAX_BYTES = 64 * 1024
COLLECT_MAX_EVENTS = 100
# Per-visitor rate limit (django-ratelimit syntax: "<count>/<s|m|h>").
COLLECT_RATE = "120/m"
# Extra origins allowed to post events besides the request's own host, e.g. "https://www.example.com".
COLLECT_ALLOWED_ORIGINS: tuple[str, ...] = ()
# PostgreSQL: False commits event batches without waiting for the WAL flush (synchronous_commit
# off for that transaction only). A database crash can then lose the last fraction of a second
# of acknowledged batches; True waits for the flush. See ``tracking/event_store.py``.
COLLECT_SYNCHRONOUS_COMMIT = False

# Events older than this many days are deleted by the purge task / command (privacy).
EVENT_RETENTION_DAYS = 180

# tracker.js: an impression is half a block visible this long; a block left above the viewport
# unclicked with less dwell than this is "abandoned"; queued events go out this often.
TRACKER_IMPRESSION_MS = 750
TRACKER_ABANDON_DWELL_MS = 2000
TRACKER_FLUSH_MS = 5000

# Behaviour signals (formula in ``behaviour.py`` and docs/tracking.md). Engagement and content
# affinity points halve every this many days; the score is 100 · (1 - e^(-points / scale));
# the level is "medium" from the first threshold and "high" from the second.
ENGAGEMENT_HALF_LIFE_DAYS = 14
ENGAGEMENT_SCALE = 20.0
ENGAGEMENT_LEVELS = (30, 60)
# content_affinity names a content type or tag only once it has at least this many points.
AFFINITY_MIN_POINTS = 2.0

# Triggers: at most this many blocks swapped in place per page view (abandon, timed reveal).
TRIGGER_FREQUENCY_CAP = 2

# Auto-optimize (a PersonalizedBlock's "Auto-optimize" panel, ``rendering/optimizer.py``):
# Thompson sampling among the variants that match, per context. False turns it off everywhere
# (every block then shows its first matching variant, as without the panel).
OPTIMIZE = True
# Pseudo-trials the prior carries: a variant's rate over all contexts, worth this many trials in
# a context that has seen it little.
OPTIMIZE_PRIOR_TRIALS = 20
# A context stops exploring once its leader beats the runner-up with this probability (normal
# approximation of the two Beta posteriors) after at least this many trials each.
OPTIMIZE_STOP_PROBABILITY = 0.95
OPTIMIZE_STOP_MIN_TRIALS = 100
# The counters (impressions and goals per block, context and variant) live this long after
# their last update in the profile store; a block keeps at most this many counters.
OPTIMIZE_COUNTER_TTL = 365 * 24 * 3600
OPTIMIZE_MAX_COUNTERS = 2000

# Learning (``learning/``): the behaviour features cover this many days of events, with one
# affinity column for each of at most this many content types (the most frequent).
LEARNING_WINDOW_DAYS = 30
LEARNING_MAX_CONTENT_TYPES = 12

# Learning jobs (``jobs/runner.py``): Celery beat runs them on these crontabs ("minute hour day-of-month
# month day-of-week", server time zone); None or "" leaves a job out of the schedule.
RECLUSTER_SCHEDULE = "30 2 * * *"
TRAIN_SCHEDULE = "0 3 * * *"
PURGE_SCHEDULE = "15 4 * * *"
# Django cache alias holding the job locks. With django-redis it is a Redis lock, shared by every
# worker; with another cache (locmem in the demo) a ``cache.add`` lock, shared within a process.
JOB_LOCK_CACHE = "default"
# A lock expires this many seconds after its last progress report, so a crashed worker frees it.
JOB_LOCK_TIMEOUT = 3600
# A running job writes its progress to its row at most this often (seconds).
JOB_PROGRESS_INTERVAL = 1.0


# Clustering (``learning/clustering.py``, docs/clustering.md).
# k is chosen by the best silhouette within this range (inclusive) unless a run fixes it.
CLUSTER_K_RANGE = (2, 8)
# Visitors sampled to choose k (the silhouette is quadratic in the rows it scores).
CLUSTER_SILHOUETTE_SAMPLE = 4000
# "kmeans" (MiniBatchKMeans, any size) or "hierarchical" (Ward, small populations only).
CLUSTER_METHOD = "kmeans"
# Hierarchical clustering keeps a distance per pair of visitors: it refuses more than this many.
CLUSTER_HIERARCHICAL_MAX_VISITORS = 10000
# A new centroid further than this (Euclidean, in standard deviations) from every previous
# cluster's is a new cluster; closer, it continues the matched one (same slug, name, conditions).
CLUSTER_NEW_DISTANCE = 1.5
# Below this many visitors in the window a run records "too few visitors" and changes nothing.
CLUSTER_MIN_VISITORS = 50
# MiniBatchKMeans initializations (the best inertia wins).
CLUSTER_N_INIT = 3
# Assignments are written to the profile store in pipelined chunks of this many visitors.
CLUSTER_ASSIGN_CHUNK = 5000


# Engagement model (``learning/engagement.py``, docs/engagement-model.md). An
# impression is positive when the same visitor clicked the block, or dwelt on it at least
# ENGAGEMENT_DWELL_SECONDS in total, within ENGAGEMENT_VISIT_SECONDS of it (the same visit).
ENGAGEMENT_DWELL_SECONDS = 10
ENGAGEMENT_VISIT_SECONDS = 30 * 60
# An impression's visitor features come from events before it: snapshots at this many evenly
# spaced cut points over the window (30: daily; more is fresher, each costs one set of feature
# queries).
ENGAGEMENT_FEATURE_SNAPSHOTS = 30
# The latest share of impressions (by time) is held out to measure AUC and log loss.
ENGAGEMENT_HOLDOUT_SHARE = 0.2
# Below either minimum (training rows, positive rows) a model is recorded but not activated, and
# RankedBlocks keep the editor's order.
ENGAGEMENT_MIN_ROWS = 200
ENGAGEMENT_MIN_POSITIVES = 20
# Tags become one feature each, for at most this many tags (the most frequent).
ENGAGEMENT_MAX_TAGS = 20
# Boosting iterations (trees) at most: scoring cost grows with it.
ENGAGEMENT_MAX_ITER = 100
# A model older than this is stale: RankedBlocks keep the editor's order until the next training.
ENGAGEMENT_MAX_AGE_DAYS = 7
# How often (seconds) a process checks whether a new model was activated elsewhere.
ENGAGEMENT_REFRESH_SECONDS = 1.0


# Experiments (``experiments/``, docs/experiments.md). The global holdout: this share of visitors
# (hashed with its own salt) gets default content everywhere and no experiment, so the overall
# lift of personalization can be measured; 0 turns it off.
EXPERIMENT_HOLDOUT = 0.05
EXPERIMENT_HOLDOUT_SALT = "microadjust-holdout"
# Frequency caps: at most this many adjustments (blocks showing something other than their
# default) per page view and per visit (30 idle minutes end a visit); None: no cap. Variants bound
# to the visitor's experiment arm, and blocks set "never capped", count but are never capped.
# Off by default: a site that built a page of personalized blocks gets every one of them until
# it chooses a cap (e.g. 10 and 50, against over-personalization).
ADJUSTMENTS_PER_PAGEVIEW = None
ADJUSTMENTS_PER_VISIT = None


# Failures the request path survives (Redis or the database down): each kind is counted and
# logged at most once per this many seconds (``faults.py``), not once per request.
FAULT_LOG_INTERVAL = 60.0

# Event pipeline (``tracking/sinks``, ``tracking/loader.py``, docs/event-pipeline.md). The sink
# the collect endpoint writes to: the database (embedded default) or a Redis Stream
# ("microadjust_cms.tracking.sinks.redis_stream.RedisStreamSink", drained by
# ``manage.py microadjust_load_events``).
EVENT_SINK = "microadjust_cms.tracking.sinks.database.DatabaseSink"
# Back-pressure: a stream shard holding this many batches (the loader is down or behind) makes
# collect answer 503 with this Retry-After; the tracker keeps the batch and sends it again.
EVENT_STREAM_MAX_BATCHES = 200_000
EVENT_STREAM_RETRY_AFTER = 30
# Redis down: the stream sink writes the batch to the database directly (True), or collect
# answers 503 and the tracker keeps the batch (False).
EVENT_STREAM_FALLBACK = True
# Streams (and loaders) to spread the events over; more than 1 for Redis Cluster.
EVENT_STREAM_SHARDS = 1
# The loaders' consumer group, how many batches one read takes, and after how many idle seconds
# a batch read by a loader that stopped is claimed by another.
EVENT_LOADER_GROUP = "loaders"
EVENT_LOADER_READ_COUNT = 500
# Loaders one ``microadjust_load_events`` process runs side by side (each its own database
# connection): while one waits for PostgreSQL, another prepares the next rounds.
EVENT_LOADER_THREADS = 2
EVENT_LOADER_CLAIM_IDLE_SECONDS = 60
# Batch ids the loader has written are kept this long (a redelivered batch is skipped).
EVENT_LOADED_BATCH_RETENTION_DAYS = 7
# PostgreSQL: the event table is partitioned by month; partitions are created this many months
# ahead (by the loader and the nightly purge job). Retention drops whole months.
EVENT_PARTITION_MONTHS_AHEAD = 2

# Editor analytics (``analytics/``, docs/analytics.md): rollups of the event table per day, and
# per hour for this many hours back, refreshed on this crontab (the periods that may have
# changed since the last refresh are rebuilt; None or "" leaves it out of the schedule).
ROLLUP_HOURS = 48
ROLLUP_SCHEDULE = "*/10 * * * *"
# Figures of fewer visitors than this are shown as "fewer than N", never as numbers.
ANALYTICS_MIN_VISITORS = 10
# Stamp the visitor's segments (cluster and rule segments, at most 8) on the events of pages that
# adjusted something, so reports can be filtered by segment; False leaves events unstamped.
ANALYTICS_SEGMENTS = True

# Prometheus (``/microadjust/metrics/``, docs/monitoring.md): off unless a token is set; a scrape
# sends ``Authorization: Bearer <token>``. Decisions are counted for at most this many (block,
# variant) pairs a process; the rest count as block "other".
METRICS_TOKEN = None
METRICS_MAX_BLOCK_SERIES = 200
# Spikes and drops (``analytics/anomalies.py``): a block variant's CTR or abandon rate on a day is
# compared with its previous days (modified z-score, by weekday); checked on this crontab for
# the day before.
ANOMALY_SCHEDULE = "30 5 * * *"
ANOMALY_HISTORY_DAYS = 28
ANOMALY_MIN_HISTORY_DAYS = 14
ANOMALY_MIN_IMPRESSIONS = 100
ANOMALY_THRESHOLD = 3.5

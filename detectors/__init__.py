"""Pure online statistics for monitoring ML models.

Nothing here imports Kafka, Faust or Prometheus: every class can be used in a
notebook, fed one observation at a time, snapshotted to plain picklable state
and restored.
"""

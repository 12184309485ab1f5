"""Feature stores: sharded, compressed log-mel features of one or more tasks."""

from emonet.store.reader import FeatureStore, Partition, open_store

__all__ = ["FeatureStore", "Partition", "open_store"]

"""Feature stores: sharded, compressed log-mel features of one or more tasks.

Modules: ``reader`` (the read API: :func:`open_store`, :class:`FeatureStore`,
:class:`Partition`), ``backends`` (the zarr / webdataset registry), ``metadata`` (root,
task and partition records), ``content`` (what a partition holds), ``staging``
(resumable block writing), ``codec`` (the named blosc settings of ``--codec``), ``integrity`` (checksums),
``verify``, ``lock`` (the writers' lock) and ``names`` (task names that are safe as paths)."""

from emonet.store.reader import FeatureStore, Partition, open_store

__all__ = ["FeatureStore", "Partition", "open_store"]

"""`emonet extract`: csv partitions + wavs -> a feature store.

``runner`` (run_extract: the steps in order), ``options`` (ExtractOptions, the report),
``plan`` (every csv row and audio header checked before writing), ``store_state`` (what
the store holds, what overwrite removes), ``writing`` (blocks through the executor,
partitions committed), ``blocks`` (the worker pool), ``featurize`` (audio -> log-mel)."""

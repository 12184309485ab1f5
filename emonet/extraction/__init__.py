"""`emonet extract`: csv partitions + wavs -> a feature store."""

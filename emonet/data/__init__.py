"""Data: csv partitions, audio decoding, log-mel features and the demo corpus."""

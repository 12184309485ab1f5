"""Training (the trainer behind `emonet train`); model set-up from a store is emonet.models.from_store."""

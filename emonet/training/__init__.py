"""Training: model set-up from stores (more with `emonet train`)."""

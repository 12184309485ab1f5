"""Predictions from audio with a checkpoint alone (``emonet predict``): inputs (files,
folders, csvs), the predictor (the checkpoint's feature config and normalisation turn audio
into features exactly as ``emonet extract`` does), and CSV/JSON output."""

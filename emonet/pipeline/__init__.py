"""YAML pipelines (``emonet run PIPELINE.yaml``): datasets, feature extraction, training
stages and evaluations as named stages of emonet commands, each skipped when it is up to
date, ending with a results table (UAR per task and stage) as CSV, markdown and a chart."""

from emonet.pipeline.runner import StageResult, run_pipeline
from emonet.pipeline.spec import Pipeline, Stage, load_pipeline

__all__ = ["Pipeline", "Stage", "StageResult", "load_pipeline", "run_pipeline"]

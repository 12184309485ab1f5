"""YAML pipelines (``emonet run PIPELINE.yaml``): one file that names the steps of an
experiment (extract, init-model, train, evaluate, predict) with their options, checked against
the same typed configs the commands use before anything runs, then run in order.

What goes here: the pipeline schema and its loader (one-line errors naming the file, the step
and the key), and the runner that calls the Python API of each step. The CLI command lives in
``emonet/cli/``.
"""

"""TFDS builders of data sets that TFDS lacks.

They import TensorFlow Datasets, so the scan for data sets in
``rigl_jax.data`` leaves this package out; import a builder only to
prepare or read its records.
"""

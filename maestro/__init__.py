"""MAESTRO benchmark pipeline: datasets, masked autoencoder, training and reporting."""

__version__ = "0.1.0"

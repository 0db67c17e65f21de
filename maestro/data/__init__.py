"""Raw formats, demo generator, Zarr stores and torch datasets."""

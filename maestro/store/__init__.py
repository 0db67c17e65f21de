"""The Zarr store: its layout (:mod:`~maestro.store.layout`, documented in
:mod:`~maestro.store.zarr_store`), shard I/O and codecs (``shard_io``, ``zstd_decode``,
``heap``), the conversion from raw readers (``convert``, ``convert_shards``, ``validate``,
``cast``), the GeoParquet tile index and the manifest of hashes. The ``convert`` rule of
``workflow/rules/data.smk`` is this subpackage's stage; raw formats live in
:mod:`maestro.data`."""

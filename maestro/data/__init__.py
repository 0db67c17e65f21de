"""Raw data and its loading: the readers of the raw distributions, the demo generator, the
verified downloader, dates, and the torch datasets over a store (the store itself is
:mod:`maestro.store`)."""

"""Band-group analysis: which bands of a modality are correlated enough to share a group."""

"""Results on disk: the versioned document, the store and its SQLite index, run identity and
hashes, run-to-run spread, and the summary text."""

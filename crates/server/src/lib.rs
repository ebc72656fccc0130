//! tandem-server: the sync server (being built: issue 3).

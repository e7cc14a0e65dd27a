//! Round trips, Redis asset files, corruption.

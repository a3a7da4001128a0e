//! The Aviary gateway library.

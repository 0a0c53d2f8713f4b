//! roost client library

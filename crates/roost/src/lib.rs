#![doc = include_str!("../README.md")]

pub mod cli;
pub mod client;

pub use client::{Client, ClientError, Response};

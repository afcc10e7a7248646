//! # p-chat server
//!
//! The composition root: reads [`config::Config`], builds the domain services
//! on concrete adapters ([`state::AppState`]) and serves them over HTTP
//! ([`http`]). This is the only crate that knows actix-web.

pub mod cli;
pub mod config;
pub mod healthcheck;
pub mod http;
pub mod limits;
pub mod lingering;
pub mod mail;
pub mod metrics;
pub mod retention;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod web;
pub mod ws;

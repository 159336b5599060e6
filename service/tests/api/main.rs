//! Integration tests: a real `provreg` process, real sockets, a real database.

mod content;
mod durability;
mod errors;
mod openapi;
mod support;

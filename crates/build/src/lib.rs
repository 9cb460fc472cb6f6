//! berth-build: `berth build`. Parses a Dockerfile with Docker's syntax, evaluates its
//! instructions with Docker's variable scoping, and produces images with the same layers, config
//! and history as Docker's classic builder (`DOCKER_BUILDKIT=0`), with a build cache that
//! survives across invocations. RUN steps and layer commits go through a [`runner::StepRunner`];
//! the real one sits on `berth-engine` and `berth-image`.
pub mod args;
pub mod builder;
pub mod cache;
pub mod context;
pub mod copy;
pub mod dockerignore;
pub mod engine_runner;
pub mod error;
#[cfg(test)]
mod fake;
pub mod fsutil;
pub mod history;
pub mod instruction;
pub mod lex;
pub mod parser;
pub mod runner;

pub use builder::{build, BuildOptions, BuildOutcome};
pub use cache::BuildCache;
pub use context::BuildContext;
pub use engine_runner::EngineRunner;
pub use error::{BuildError, Result};
pub use runner::{BaseImage, ProcessSpec, StepContainer, StepRunner};

//! berth-image: Berth's image and layer store in Docker's overlay2 layout.
//!
//! - [`Store`] opens a root and resolves references to [`Image`]s.
//! - Layers are keyed by ChainID (`layers`), extracted safely in one streaming pass (`apply`),
//!   and rebuilt byte for byte for export (`export`, `tarsplit`).
//! - Container layers are in `mounts`, mounted by `overlay` (the one overlayfs mount path:
//!   new mount API with `lowerdir+`, never a `chdir`); archives (`docker save`, OCI) in
//!   `archive`; `docker import` in `import`; listing, history, inspect and removal in `catalog`;
//!   Docker's `images` filters in `filter`.
//!
//! This crate knows nothing of containers beyond their layers.
pub mod apply;
pub mod archive;
pub mod catalog;
pub mod compression;
pub mod config;
pub mod digest;
pub mod distribution;
pub mod error;
pub mod export;
pub mod fault;
pub mod filter;
pub(crate) mod fold;
pub mod imagedb;
pub mod import;
pub mod intent;
pub mod layers;
pub mod layout;
pub mod mounts;
pub mod overlay;
pub mod partial;
pub mod recovery;
pub mod reference;
pub mod repositories;
pub mod side;
pub mod store;
pub mod tarsplit;
pub mod tarstream;

pub use archive::{LoadedImage, NoProgress, Progress};
pub use catalog::{HistoryRow, ImageInspect, ImageSummary, RemoveEvent};
pub use config::{ContainerConfig, HealthConfig, History, ImageConfig, RootFs};
pub use error::ImageError;
pub use import::ImportOptions;
pub use layers::{LayerInfo, StagedLayer};
pub use mounts::ContainerLayer;
pub use reference::Reference;
pub use store::{Image, Store};

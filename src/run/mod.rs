//! One method run: a private copy of the shared directory in, a container, a checked result out.

pub mod check;
pub mod tree;

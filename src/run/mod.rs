//! One method run: the shared directory as data going in, what the module left coming out, and the checks in between.

pub mod check;
pub mod tree;

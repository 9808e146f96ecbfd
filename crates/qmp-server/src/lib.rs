//! QMP server framework and simulated QEMU.
#![warn(missing_docs)]

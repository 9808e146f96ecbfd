//! The simulated QEMU.

//! Typed QMP events (filled in by the typed-events work).

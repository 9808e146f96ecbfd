//! Typed QMP commands (filled in by the typed-commands work).
